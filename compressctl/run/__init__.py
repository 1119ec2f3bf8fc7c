"""One run: the pipeline, gates, the stage cache, the signed manifest, re-checking artifacts in another runtime.

May import recipe/ and everything below it; never search/, the api or the CLI.
"""
