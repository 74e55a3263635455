import pytest

from studyserver.geo import postal
from studyserver.geo.services import postal_error_message, province_name


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("h2x1y4", "H2X 1Y4"), ("  H2X 1Y4 ", "H2X 1Y4"), ("h2x-1y4", "H2X 1Y4"), ("K1A\t0B1", "K1A 0B1"),
     ("x0a 0h0", "X0A 0H0"), ("V6B  4Y8", "V6B 4Y8")],
)
def test_normalizes_case_spaces_and_a_hyphen(raw, normalized):
    check = postal.normalize_postal_code(raw)
    assert check.error is None
    assert check.normalized == normalized
    assert check.fsa == normalized[:3]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", postal.EMPTY), ("   ", postal.EMPTY), (None, postal.EMPTY),
        ("12345", postal.NOT_CANADIAN), ("12345-6789", postal.NOT_CANADIAN), ("902101234", postal.NOT_CANADIAN),
        ("H2X_1Y4", postal.BAD_CHARACTERS), ("H2X.1Y4", postal.BAD_CHARACTERS), ("H2X 1Y4!", postal.BAD_CHARACTERS),
        ("É2X1Y4", postal.BAD_CHARACTERS),
        ("H2X", postal.WRONG_LENGTH), ("H2X 1Y", postal.WRONG_LENGTH), ("H2X 1Y44", postal.WRONG_LENGTH),
        ("123456", postal.BAD_FORMAT), ("HH2X1Y", postal.BAD_FORMAT), ("H2X1YY", postal.BAD_FORMAT),
        ("D2X 1Y4", postal.BAD_LETTER), ("H2O 1Y4", postal.BAD_LETTER), ("H2X 1U4", postal.BAD_LETTER),
        ("I2X1Y4", postal.BAD_LETTER), ("Q1A1A1", postal.BAD_LETTER), ("K1F 1A1", postal.BAD_LETTER),
        ("W1A 1A1", postal.BAD_FIRST_LETTER), ("Z2X 1Y4", postal.BAD_FIRST_LETTER),
    ],
)
def test_every_malformed_input_gets_its_error(raw, error):
    check = postal.normalize_postal_code(raw)
    assert check.error == error
    assert check.normalized is None


def test_w_and_z_are_allowed_after_the_first_position():
    assert postal.normalize_postal_code("K1W 1Z1").error is None


def test_first_letters_map_to_provinces_and_x_is_shared():
    assert postal.normalize_postal_code("X1A 2B3").provinces == ("NT", "NU")
    assert postal.normalize_postal_code("H2X 1Y4").provinces == ("QC",)
    assert postal.normalize_postal_code("T2P 1J9").provinces == ("AB",)
    assert set(postal.PROVINCES_BY_FIRST_LETTER) == set("ABCEGHJKLMNPRSTVXY")
    assert {p for ps in postal.PROVINCES_BY_FIRST_LETTER.values() for p in ps} == set(postal.PROVINCE_NAMES)


def test_rural_fsas_have_a_zero_second_character():
    assert postal.is_rural_fsa("T0A") and not postal.is_rural_fsa("T2P")


def test_each_error_has_its_own_english_and_french_message():
    codes = postal.RETRY_ERRORS | postal.SCREEN_OUT_ERRORS
    assert codes == set(postal.ERROR_MESSAGES)
    english = {postal_error_message(code, "en") for code in codes}
    french = {postal_error_message(code, "fr") for code in codes}
    assert len(english) == len(codes) and len(french) == len(codes)  # all distinct
    assert english.isdisjoint(french)
    assert "D, F, I, O, Q" in postal_error_message(postal.BAD_LETTER, "fr")
    assert postal_error_message(postal.EMPTY, "fr-CA") == postal_error_message(postal.EMPTY, "fr")
    with pytest.raises(KeyError):
        postal_error_message("no_such_error", "en")


def test_province_names_in_both_languages():
    assert province_name("QC", "fr") == "Québec"
    assert province_name("bc", "en") == "British Columbia"
    assert province_name("NL", "fr") == "Terre-Neuve-et-Labrador"
