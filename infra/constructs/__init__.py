"""Constructs with keyword-only arguments that expose what they create as attributes."""
