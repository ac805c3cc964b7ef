"""Media in and out: decode, encode, side streams, colour rules, pipes and still images (PyAV, OpenCV)."""
