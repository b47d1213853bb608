"""Run folders and what is done with them: load a trained run, extract its canonical mesh once,
repose it to pose sequences (one or many), export it for engines, read the poses a command is given.

A run folder is what ``invskin train --out RUN`` writes (:mod:`invskin.runs.folder`). This layer sits
above the networks (:mod:`invskin.models`) and training (:mod:`invskin.training`); the command
line, evaluation and the viewer build on it.
"""
