"""The app's stacks: each composes constructs, does the grants and declares the outputs."""
