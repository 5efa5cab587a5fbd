"""Reference solutions: each file defines the functions its exercise asks for."""
