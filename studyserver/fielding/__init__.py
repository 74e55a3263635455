"""Fielding a study: the study's admin (overview, readiness, opening, copying, moving to another
questionnaire version), ``study_readiness`` and ``seed_demo``. It sits above the apps it brings
together (studies, assignment, treatments, survey): see ARCHITECTURE.md."""
