"""Retrieval and zero-shot metrics for image–text models (used each epoch and for acceptance).

All functions take L2-normalised float32 embeddings as numpy arrays.

Definitions
-----------
pair recall@k (image→text)
    Fraction of images whose own caption is among the k captions most similar to the image.
    Captions with identical text count as the same caption.
pair recall@k (text→image)
    Fraction of captions whose own image is among the k most similar images (identical
    captions: any image of that caption counts).
zero-shot accuracy
    Fraction of images whose most similar class prompt (one vector per class, the mean of
    its prompt embeddings) is their true class.
class recall@k (query→image)
    For each free-text query with an intended class (or a set of accepted classes), the
    fraction of its k most similar images that belong to it (precision of the top k);
    averaged over queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, idx, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(idx, order, axis=1)


def pair_recall(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    captions: Sequence[str],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k both ways for aligned (image i ↔ caption i) embeddings; see module docs."""
    image_emb = np.asarray(image_emb, np.float32)
    text_emb = np.asarray(text_emb, np.float32)
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    cid = np.array([ids[c] for c in captions])
    sims = image_emb @ text_emb.T  # (N images, N texts)
    out: dict[str, float] = {}
    for k in ks:
        top_t = _topk(sims, k)  # texts per image
        out[f"i2t_r@{k}"] = float(np.mean((cid[top_t] == cid[:, None]).any(axis=1)))
        top_i = _topk(sims.T, k)  # images per text
        out[f"t2i_r@{k}"] = float(np.mean((cid[top_i] == cid[:, None]).any(axis=1)))
    return out


def zero_shot_accuracy(
    image_emb: np.ndarray, labels: Sequence[str], class_emb: np.ndarray, class_names: Sequence[str]
) -> tuple[float, np.ndarray]:
    """Top-1 accuracy over ``class_names`` and the confusion matrix (rows: true).

    Images whose label is not in ``class_names`` are ignored.
    """
    names = list(class_names)
    keep = np.array([lab in names for lab in labels])
    if not keep.any():
        return float("nan"), np.zeros((len(names), len(names)), int)
    true = np.array([names.index(lab) for lab, k in zip(labels, keep, strict=False) if k])
    pred = (np.asarray(image_emb, np.float32)[keep] @ np.asarray(class_emb, np.float32).T).argmax(1)
    conf = np.zeros((len(names), len(names)), int)
    np.add.at(conf, (true, pred), 1)
    return float(np.mean(true == pred)), conf


def class_recall_at_k(
    query_emb: np.ndarray,
    query_classes: Sequence[str | Sequence[str]],
    image_emb: np.ndarray,
    image_labels: Sequence[str],
    k: int = 10,
) -> tuple[float, np.ndarray]:
    """Mean over queries of the fraction of the top-``k`` images of an accepted class.

    ``query_classes[i]`` is the intended class of query i, or a sequence of the classes the
    query describes (any of them counts). Returns the mean and the per-query values.
    """
    labels = np.asarray(list(image_labels))
    top = _topk(np.asarray(query_emb, np.float32) @ np.asarray(image_emb, np.float32).T, k)
    per = []
    for t, c in zip(top, query_classes, strict=True):
        accepted = [c] if isinstance(c, str) else list(c)
        per.append(float(np.mean(np.isin(labels[t], accepted))))
    per_arr = np.array(per)
    return float(per_arr.mean()), per_arr


def class_prompt_embeddings(
    embed_texts, prompts: Mapping[str, Sequence[str] | str]
) -> tuple[list[str], np.ndarray]:
    """One L2-normalised vector per class: the mean of the embeddings of its prompts.

    ``embed_texts`` is any callable list[str] → (N, D) normalised array.
    """
    names = list(prompts)
    rows = []
    for name in names:
        p = prompts[name]
        plist = [p] if isinstance(p, str) else list(p)
        v = np.asarray(embed_texts(plist), np.float32).mean(0)
        rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
    return names, np.stack(rows).astype(np.float32)
