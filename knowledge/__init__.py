"""Curated knowledge (FAQ, organisation facts, courses, red flags) and the code that searches it."""
