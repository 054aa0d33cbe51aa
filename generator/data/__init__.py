"""Data that ships with the generator: task corpora and a recorded run (see README.md here).

- ``api-bank-lv3.jsonl``: 324 user requests from API-Bank's level-3 training split (Li et al.,
  EMNLP 2023; MIT licence, Copyright (c) 2022 Alibaba Research), the default ``--corpus``;
- ``api-bank-lv3-sample.jsonl``: 14 of them, the corpus of the recorded run;
- ``fitness-classes.recording.json``: a recorded run (``--provider replay --recording
  fitness-classes``). Its answers were written by hand for envfarm's tests
  (tests/generator/recording.py) and served by the project's scripted fake LLM server: no real
  model wrote them.

A package (this file) so that setuptools ships the files as package data.
"""
