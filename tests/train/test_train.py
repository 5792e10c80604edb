"""The ``train`` command: end to end on a tiny CLIP, reload, resume, CLI wiring, metrics."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import galaxy_array


def _pairs_folder(folder: Path, n: int = 32, *, column: str = "caption") -> Path:
    """n JPEG cutouts (two kinds) + a CSV of path,<column>."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        kind = "spiral" if i % 2 else "elliptical"
        g = galaxy_array(32, kind=kind, seed=i)
        g = (255 * (g - g.min()) / (np.ptp(g) + 1e-9)).astype(np.uint8)
        rgb = np.stack([g, (g * (0.6 if i % 2 else 1.0)).astype(np.uint8), g // 2], axis=-1)
        name = f"g{i:03d}.jpg"
        Image.fromarray(rgb).save(folder / name)
        text = f"a {kind} galaxy" if column == "caption" else kind
        rows.append({"path": name, column: text})
    with open(folder / "pairs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", column])
        w.writeheader()
        w.writerows(rows)
    return folder / "pairs.csv"


def _args(out: Path, data: Path, *extra: str) -> argparse.Namespace:
    from galaxy_explorer.train.train import add_train_command

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_train_command(sub)
    return parser.parse_args(
        [
            "train",
            "--init",
            "tiny-clip",
            "--data",
            str(data),
            "--out",
            str(out),
            "--batch-size",
            "16",
            "--augment",
            "0",
            "--no-progress",
            "--threads",
            "1",
            "--val-fraction",
            "0",
            *extra,
        ]
    )


def _image_embeddings(model, pixels):
    import torch

    from galaxy_explorer.train.train import image_features

    with torch.no_grad():
        return torch.nn.functional.normalize(image_features(model, pixels), dim=-1).numpy()


def test_train_end_to_end_loss_goes_down_and_reloads(tmp_path, capsys):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from galaxy_explorer.train.train import run_train

    data = _pairs_folder(tmp_path / "data")
    out = tmp_path / "model"
    rc = run_train(
        _args(out, data, "--epochs", "3", "--batch-size", "8", "--lr", "5e-3", "--warmup", "0")
    )
    assert rc == 0
    log = json.loads((out / "training_log.json").read_text())
    losses = [h["loss"] for h in log["history"]]
    assert log["steps"] == 12 and len(losses) == 3
    assert losses[-1] < losses[0]
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["steps"] == 12

    # loads exactly like the seed model card, and gives the same embeddings twice
    model = CLIPModel.from_pretrained(out, use_safetensors=True).eval()
    proc = CLIPProcessor.from_pretrained(out)
    assert proc.tokenizer is not None and not (out / "pytorch_model.bin").exists()
    px = torch.randn(3, 3, 32, 32)
    again = CLIPModel.from_pretrained(out, use_safetensors=True).eval()
    np.testing.assert_allclose(
        _image_embeddings(model, px), _image_embeddings(again, px), atol=1e-6
    )
    # and the checkpoint holds the same weights as the final model
    ck = CLIPModel.from_pretrained(out / "checkpoint", use_safetensors=True).eval()
    np.testing.assert_allclose(_image_embeddings(model, px), _image_embeddings(ck, px), atol=1e-6)


def test_saved_model_matches_trained_model_in_memory(tmp_path):
    import torch
    from transformers import CLIPModel

    from galaxy_explorer.train.data import load_folder_pairs
    from galaxy_explorer.train.train import (
        TINY_CLIP_CONFIG,
        TrainConfig,
        build_clip_from_config,
        train,
    )

    data = _pairs_folder(tmp_path / "data", n=16)
    model, proc = build_clip_from_config(TINY_CLIP_CONFIG)
    pairs = load_folder_pairs(data, 32)
    train(
        model,
        proc,
        pairs,
        TrainConfig(out=tmp_path / "m", epochs=1, batch_size=8, progress=False, threads=1),
    )
    px = torch.randn(2, 3, 32, 32)
    reloaded = CLIPModel.from_pretrained(tmp_path / "m").eval()
    np.testing.assert_allclose(
        _image_embeddings(model.eval(), px), _image_embeddings(reloaded, px), atol=1e-5
    )


def test_resume_continues_exactly(tmp_path):
    from safetensors.torch import load_file

    from galaxy_explorer.train.data import load_folder_pairs
    from galaxy_explorer.train.train import (
        TINY_CLIP_CONFIG,
        TrainConfig,
        build_clip_from_config,
        train,
    )

    data = _pairs_folder(tmp_path / "data", n=32)
    pairs = load_folder_pairs(data, 32)
    common = dict(epochs=2, batch_size=8, lr=3e-3, progress=False, threads=1)  # 8 steps

    m1, p1 = build_clip_from_config(TINY_CLIP_CONFIG, seed=3)
    train(m1, p1, pairs, TrainConfig(out=tmp_path / "straight", **common))

    m2, p2 = build_clip_from_config(TINY_CLIP_CONFIG, seed=3)
    s = train(m2, p2, pairs, TrainConfig(out=tmp_path / "split", stop_after=3, **common))
    assert s["steps"] == 3 and not s["complete"]
    m3, p3 = build_clip_from_config(
        TINY_CLIP_CONFIG, seed=99
    )  # different init: resume must overwrite it
    s = train(m3, p3, pairs, TrainConfig(out=tmp_path / "split", resume=True, **common))
    assert s["steps"] == 8 and s["complete"]

    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5, err_msg=k)


def test_label_csv_becomes_captions(tmp_path):
    from galaxy_explorer.train.data import load_folder_pairs

    data = _pairs_folder(tmp_path / "data", n=6, column="label")
    pairs = load_folder_pairs(data, 32)
    assert len(pairs) == 6 and pairs.images.shape == (6, 3, 32, 32)
    assert pairs.labels == ["elliptical", "spiral"] * 3
    assert all(
        ("spiral" in c.lower()) == (lab == "spiral")
        for c, lab in zip(pairs.captions, pairs.labels, strict=False)
    )


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    from galaxy_explorer.train.train import run_train

    bad = tmp_path / "bad.csv"
    bad.write_text("file_name,text\n")
    assert run_train(_args(tmp_path / "o", bad)) == 1
    assert "error:" in capsys.readouterr().err
    missing = tmp_path / "nope.csv"
    assert run_train(_args(tmp_path / "o", missing)) == 1


def test_two_model_sources_is_a_usage_error(tmp_path, capsys):
    from galaxy_explorer.train.train import run_train

    data = _pairs_folder(tmp_path / "d", 4)
    args = _args(tmp_path / "o", data, "--config", str(tmp_path / "cfg.json"))
    assert run_train(args) == 2  # a usage error, like every other command's
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: give exactly one of --model, --init, --config"]
    assert not (tmp_path / "o").exists()


def test_cli_registers_train(capsys):
    from galaxy_explorer.train.train import add_train_command

    parser = argparse.ArgumentParser(prog="galaxy-explorer")
    add_train_command(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert "--freeze-text" in capsys.readouterr().out


def test_contrastive_loss_treats_identical_captions_as_positives():
    import torch

    from galaxy_explorer.train.train import contrastive_loss

    # images 0 and 1 share a caption: both captions count as right for both images
    img = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scale = torch.tensor(np.log(100.0))
    loss = contrastive_loss(img, img.clone(), scale, torch.tensor([0, 0, 1]))
    assert float(loss) == pytest.approx(2 / 3 * np.log(2), abs=1e-3)  # the floor: target entropy
    # a model that tells the two apart is penalised relative to treating them alike
    apart = torch.tensor([[1.0, 0.2], [1.0, -0.2], [0.0, 1.0]])
    assert contrastive_loss(apart, apart.clone(), scale, torch.tensor([0, 0, 1])) > loss


def test_metrics_on_toy_embeddings():
    from galaxy_explorer.train.evaluate import class_recall_at_k, pair_recall, zero_shot_accuracy

    eye = np.eye(4, dtype=np.float32)
    m = pair_recall(eye, eye, ["a", "b", "c", "d"])
    assert m["i2t_r@1"] == 1.0 and m["t2i_r@1"] == 1.0
    acc, conf = zero_shot_accuracy(eye[[0, 1, 1]], ["x", "y", "x"], eye[:2], ["x", "y"])
    assert acc == pytest.approx(2 / 3) and conf.tolist() == [[1, 1], [0, 1]]
    r, per = class_recall_at_k(eye[:1], ["x"], eye[[0, 0, 1]], ["x", "x", "y"], k=2)
    assert r == 1.0 and per.tolist() == [1.0]
    r, _ = class_recall_at_k(eye[:1], ["y"], eye[[0, 0, 1]], ["x", "x", "y"], k=2)
    assert r == 0.0
    r, _ = class_recall_at_k(eye[:1], [("y", "x")], eye[[0, 0, 1]], ["x", "x", "y"], k=2)
    assert r == 1.0  # any accepted class counts


def test_train_streams_the_generator_and_reports_validation_metrics(tmp_path):
    from galaxy_explorer.train.train import add_train_command, run_train

    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "train",
            "--init",
            "tiny-clip",
            "--synthetic",
            "24",
            "--val-synthetic",
            "20",
            "--render-sizes",
            "32",
            "48",
            "--app-render-fraction",
            "0.5",
            "--label-caption-fraction",
            "0.2",
            "--batch-size",
            "8",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "m"),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert run_train(args) == 0
    hist = json.loads((tmp_path / "m" / "training_log.json").read_text())["history"]
    assert {"zero_shot_acc", "i2t_r@1", "t2i_r@10"} <= set(hist[-1])


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    from galaxy_explorer.train.data import load_folder_pairs
    from galaxy_explorer.train.train import (
        TINY_CLIP_CONFIG,
        TrainConfig,
        build_clip_from_config,
        train,
    )

    pairs = load_folder_pairs(_pairs_folder(tmp_path / "data", n=16), 32)
    model, proc = build_clip_from_config(TINY_CLIP_CONFIG)
    cfg = TrainConfig(
        out=tmp_path / "m", epochs=2, batch_size=4, grad_accum=2, progress=False, threads=1
    )
    s = train(model, proc, pairs, cfg)
    assert s["steps"] == 4 and s["complete"]  # 16 pairs / (4 x 2) = 2 optimiser steps per epoch
