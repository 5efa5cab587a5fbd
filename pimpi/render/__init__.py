"""Distributed rendering: built-in scenes, any per-frame renderer, chunked video encoding."""
