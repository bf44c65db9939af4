"""Models: the teacher, the students, and what both are made of.

- ``teacher``: loading a teacher (Hub id, local folder, packaged MiniLM-L6), safely (safetensors, no remote code).
- ``student``: students cut from alternate teacher layers, random ones, students loaded on their own.
- ``bilstm``: a BiLSTM student (Tang et al. 2019), registered with transformers' Auto classes.
- ``tiny``: the tiny random BERT and tokenizer of the smoke profile.
- ``vocabulary``: whether teacher and student read the same token ids.
- ``layers``: where the encoder layers and their self-attention are inside a BERT-family model.

Imports the foundation and ``kdlab.data``.
"""
