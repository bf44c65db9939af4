"""A non-Transformer student: a one-layer BiLSTM classifier (Tang et al. 2019, "Distilling Task-Specific Knowledge
from BERT into Simple Neural Networks").

It reads the teacher's token ids (same tokenizer), so the lab's data, Trainer and logits losses work unchanged;
only logit-level distillation applies (no attention or hidden states to match). Its word embeddings start from
the teacher's: copied when the widths match, else projected onto the teacher embeddings' top principal
directions (``embedding_size`` < teacher width).

    tokens [B, S] -> embeddings [B, S, E] -> BiLSTM (last hidden state of each direction) [B, 2H]
                  -> Dropout -> Linear(2H, H) -> ReLU -> Linear(H, C) = logits [B, C]

Registered with transformers' Auto classes (``model_type = "kdlab-bilstm"``), so a saved student loads with
``AutoModelForSequenceClassification.from_pretrained`` once ``kdlab.models.bilstm`` is imported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from kdlab.errors import KDLabError


class BiLSTMConfig(PretrainedConfig):
    model_type = "kdlab-bilstm"

    def __init__(self, vocab_size: int = 30522, embedding_size: int = 300, hidden_size: int = 300,
                 dropout: float = 0.1, pad_token_id: int = 0, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.embedding_size, self.hidden_size = vocab_size, embedding_size, hidden_size
        self.dropout = dropout
        self.num_hidden_layers = 1  # one recurrent layer (tables and benchmarks print it as the depth)


class BiLSTMForSequenceClassification(PreTrainedModel):
    config_class = BiLSTMConfig
    base_model_prefix = "bilstm"
    main_input_name = "input_ids"

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True, bidirectional=True)
        hidden = config.hidden_size
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                        nn.Linear(hidden, config.num_labels))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **unused) -> SequenceClassifierOutput:
        """input_ids, attention_mask: [B, S] (right padding); returns logits [B, C] (and the CE loss with labels)."""
        lengths = attention_mask.sum(dim=1) if attention_mask is not None else torch.full(
            (input_ids.shape[0],), input_ids.shape[1], device=input_ids.device)
        packed = pack_padded_sequence(self.embeddings(input_ids), lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: [2, B, H], forward and backward final states
        logits = self.classifier(torch.cat([h_n[0], h_n[1]], dim=-1))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(BiLSTMConfig.model_type, BiLSTMConfig, exist_ok=True)
AutoModelForSequenceClassification.register(BiLSTMConfig, BiLSTMForSequenceClassification, exist_ok=True)


def teacher_word_embeddings(teacher: nn.Module, width: int) -> torch.Tensor:
    """The teacher's word embeddings [V, D_t], as they are when ``width == D_t``, else projected onto their top
    ``width`` principal directions ([V, width], centred; SVD of the embedding matrix)."""
    weight = teacher.get_input_embeddings().weight.detach().float().cpu()
    if width == weight.shape[1]:
        return weight.clone()
    if not 1 <= width < weight.shape[1]:
        raise KDLabError(f"BiLSTM embedding_size={width}: use at most the teacher's width ({weight.shape[1]}).")
    centred = weight - weight.mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)  # v: [D_t, D_t], rows = principal directions
    return centred @ v[:width].T


def bilstm_from_teacher(teacher: nn.Module, hidden_size: int = 300, embedding_size: int | None = None,
                        seed: int = 0) -> BiLSTMForSequenceClassification:
    """A BiLSTM student over the teacher's vocabulary, with the teacher's word embeddings (``embedding_size``:
    default the teacher's width) and the teacher's labels; the LSTM and classifier are random (``seed``)."""
    t = teacher.config
    width = embedding_size or t.hidden_size
    config = BiLSTMConfig(vocab_size=t.vocab_size, embedding_size=width, hidden_size=hidden_size,
                          pad_token_id=t.pad_token_id or 0, num_labels=t.num_labels,
                          id2label=dict(t.id2label), label2id=dict(t.label2id))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BiLSTMForSequenceClassification(config)
    with torch.no_grad():
        model.embeddings.weight.copy_(teacher_word_embeddings(teacher, width))
    return model.float().eval()


