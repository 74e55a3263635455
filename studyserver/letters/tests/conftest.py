"""The survey tests' Yukon district with approved images, for walking the real flow to the letter."""

from studyserver.survey.tests.conftest import media, yukon  # noqa: F401 (fixtures re-exported)
