"""The plan language: the space, the stages and their checks, narrowing, and what each stage decides."""
