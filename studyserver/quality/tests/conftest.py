"""The survey tests' study on the real 2013 districts, with approved images for Yukon."""

from studyserver.survey.tests.conftest import media, yukon  # noqa: F401 (fixtures for these tests)
