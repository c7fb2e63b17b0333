"""Text to vectors to nearest ids. Knows nothing of FAQs: content registers itself."""
