"""Recipes: the schema with loading, ``--set`` and model checks, error messages, reference docs, bundled and starters.

May import stages/, targets/ and everything below them; never run/, search/, the api or the CLI.
"""
