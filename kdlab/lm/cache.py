"""The teacher's next-token distributions computed once and stored as top-k log-probabilities (safetensors).

Every student and every epoch then reads the teacher from disk instead of running it (DistillKit's offline mode;
trl #1975, #2255 ask for it). Per real target position the file keeps the k most likely token ids and their log
p (fp16); the rest of the mass is one bucket, recomputed from them (``losses.sparse_forward_kl``). Layout, for N
target positions over E examples (position j of example e predicts its token j + 1):

- ``ids`` ``[N, k]`` (int16 when the vocabulary fits in 32,767 ids, else int32) and ``log_probs`` ``[N, k]`` (fp16);
- ``offsets`` ``[E + 1]`` (int64): example e's positions are rows ``offsets[e]:offsets[e + 1]``.

Bytes per cached token: k × (2 or 4 + 2), e.g. 128 at k = 32 with a small vocabulary (DistillKit recommends about
300 after its compression).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from kdlab.artifacts import atomic_dir
from kdlab.errors import KDLabError


@torch.inference_mode()
def cache_teacher(teacher, dataset, collator, k: int, folder: str | Path, rows: int, batch_size: int = 64,
                  device=None) -> dict:
    """Run ``teacher`` over ``dataset`` once and write its top-``k`` log-probabilities to ``folder``
    (``teacher_topk.safetensors`` + ``cache.json``); returns the cache's description (k, tokens, bytes)."""
    from safetensors.torch import save_file

    if not 1 <= k <= rows:
        raise KDLabError(f"top_k={k}: keep between 1 and the vocabulary's {rows} tokens.")
    device = device or next(teacher.parameters()).device
    teacher = teacher.eval()
    ids_chunks, lp_chunks, offsets = [], [], [0]
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        logits = teacher(input_ids=batch["input_ids"].to(device),
                         attention_mask=batch["attention_mask"].to(device)).logits[:, :-1, :rows]
        log_p = torch.log_softmax(logits.float(), -1)
        top_lp, top_ids = log_p.topk(k, dim=-1)
        targets = batch["labels"][:, 1:] != -100
        for row in range(targets.shape[0]):
            n = int(targets[row].sum())  # right-padded: the real targets come first
            ids_chunks.append(top_ids[row, :n].cpu())
            lp_chunks.append(top_lp[row, :n].cpu())
            offsets.append(offsets[-1] + n)
    id_dtype = torch.int16 if rows <= 32767 else torch.int32
    tensors = {"ids": torch.cat(ids_chunks).to(id_dtype), "log_probs": torch.cat(lp_chunks).half(),
               "offsets": torch.tensor(offsets, dtype=torch.int64)}
    info = {"k": k, "rows": rows, "examples": len(dataset), "tokens": offsets[-1],
            "bytes": sum(t.numel() * t.element_size() for t in tensors.values())}
    info["bytes_per_token"] = info["bytes"] / max(1, info["tokens"])
    with atomic_dir(folder) as tmp:
        save_file(tensors, str(Path(tmp) / "teacher_topk.safetensors"))
        (Path(tmp) / "cache.json").write_text(json.dumps(info, indent=2))
    return info


class TeacherCache:
    """A cache written by ``cache_teacher``, read back as padded ``[B, S, k]`` tensors for a batch's examples."""

    def __init__(self, folder: str | Path):
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "teacher_topk.safetensors").is_file():
            raise KDLabError(f"no teacher cache in {folder}: build it first (kdlab.lm.cache.cache_teacher).")
        tensors = load_file(str(folder / "teacher_topk.safetensors"))
        self.ids, self.log_probs, self.offsets = tensors["ids"], tensors["log_probs"], tensors["offsets"]
        self.info = json.loads((folder / "cache.json").read_text())
        self.k = self.ids.shape[1]

    def batch(self, index: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(top_ids [B, width, k], top_log_probs [B, width, k])`` for examples ``index`` [B]; padding positions
        hold id 0 at log p −inf (they are masked out of the loss anyway)."""
        out_ids = torch.zeros((len(index), width, self.k), dtype=torch.long)
        out_lp = torch.full((len(index), width, self.k), float("-inf"))
        for row, e in enumerate(index.tolist()):
            if not 0 <= e < len(self.offsets) - 1:
                raise KDLabError(f"example {e} is not in the teacher cache ({len(self.offsets) - 1} examples): the "
                                 "cache was built from other data; rebuild it.")
            a, b = int(self.offsets[e]), int(self.offsets[e + 1])
            n = min(b - a, width)
            out_ids[row, :n] = self.ids[a: a + n].long()
            out_lp[row, :n] = self.log_probs[a: a + n].float()
        return out_ids, out_lp
