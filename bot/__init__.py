"""Spørg Rådet: a cited Q&A bot about Aarhus Kommune's Rådet for Sociale Investeringer."""

__version__ = "0.1.0"
