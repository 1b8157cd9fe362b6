"""Sentiment scoring of news and social text.

`model.SentimentModel` is the Dagster resource; torch and transformers are imported only
when a transformer model is actually loaded, so importing this package stays cheap.
"""
