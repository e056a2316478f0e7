"""Rendering results: JSON documents and rich text. Data objects never render themselves."""
