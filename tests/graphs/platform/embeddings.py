"""A deterministic fake embedding: how often each of four animal words occurs in the text."""

WORDS = ("cat", "dog", "fish", "bird")


def embed(texts: list[str]) -> list[list[float]]:
    return [[text.lower().count(word) + 0.01 for word in WORDS] for text in texts]
