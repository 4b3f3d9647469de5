"""Texts that stress a tokenizer and an exported model at once: accents, CJK, emoji, one short
word, and a text past the model's maximum length (so `truncate=True` must be given)."""

SENTENCES = [
    "A man is eating food.",
    "Ça coûte trop cher, mais le café était délicieux à Zürich.",
    "東京で一番おいしいラーメン屋はどこですか？",
    "I love this product 😍🔥 best purchase ever!!!",
    "ok",
    " ".join(["A long text that goes past the model's maximum sequence length."] * 50),
]
