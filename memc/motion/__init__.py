"""Making the in-between frames: estimate flow, project it to t, handle occlusion, synthesize, refine."""
