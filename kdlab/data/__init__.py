"""Data: sentence-classification sets and what the lab makes of them.

- ``sources``: SST-2 from the Hub, GLUE TSV folders (any number of classes), the label conventions (``UNLABELLED``).
- ``synthetic``: synthetic sentences with negation, for smoke runs.
- ``loading``: ``load_sst2`` (a source by name, seeded sample caps) and ``load_data`` (a run's splits from its config).
- ``transfer``: the unlabelled transfer set (hidden labels, labelled rows, label balance).
- ``augment``: augmented transfer-set sentences (Tang et al. 2019).
- ``tokens``: tokenisation and token lengths.

Imports only the foundation (``kdlab.errors``, ``kdlab.config``).
"""
