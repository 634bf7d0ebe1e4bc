"""The tokenizer contract of a text model's export: how a caller turns text into the token ids
the graph takes, written into the ONNX metadata's `tokenizer` field (README.md, "Export").
The graph takes token ids because tokenizing is not arithmetic; the vocabulary it needs, when
training fitted one, ships beside the model as a JSON list of words."""

from __future__ import annotations

from types import ModuleType


def tokenizer_contract(data: ModuleType, preprocessing: dict,
                       vocabulary_file: str | None) -> dict | None:
    """The contract for the program's text input, or None when its data is not text.
    `vocabulary_file` is the name the vocabulary is written under beside the model."""
    common = {"input": next(iter(data.MODEL_INPUTS)), "max_len": data.MAX_LEN, "pad_id": 0,
              "padding": "pre", "truncating": "pre"} if hasattr(data, "MAX_LEN") else {}
    if "vocabulary" in preprocessing:  # text_csv: words looked up in the fitted vocabulary
        return {
            "kind": "words",
            **common,
            "vocabulary_file": vocabulary_file,
            "lowercase": True,
            "word_pattern": data.WORD.pattern,
            "first_word_id": 2,  # word i of the vocabulary file has id i + 2
            "oov_id": data.OOV,
            "steps": "lowercase the text; its words are the matches of word_pattern; each word "
                     "is its index in the vocabulary file + first_word_id, or oov_id when it "
                     "is not there; keep the last max_len ids; pad with pad_id in front to "
                     "max_len",
        }
    if hasattr(data, "INDEX_FROM"):  # imdb: reviews as word ranks, as Keras' imdb.npz has them
        return {
            "kind": "imdb_word_ranks",
            **common,
            "start_id": data.START,
            "oov_id": data.OOV,
            "index_from": data.INDEX_FROM,
            "vocab": data.VOCAB,
            "steps": "a review is a list of word ranks (1 = the most frequent word, as in "
                     "Keras' imdb.npz); each rank + index_from is its id, or oov_id from vocab "
                     "on; start_id goes first; keep the last max_len ids; pad with pad_id in "
                     "front to max_len",
        }
    return None
