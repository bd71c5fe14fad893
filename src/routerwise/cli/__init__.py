"""Thin typer commands, one module each; every command calls one library function."""
