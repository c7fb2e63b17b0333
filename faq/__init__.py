"""Help content (collections, FAQs, documents) and searching it."""
