from connectors.directory.ids import check_adeli, check_national, check_rpps, luhn_is_valid, luhn_key, split_national


def test_luhn_key_makes_a_valid_number_and_any_other_digit_fails():
    for base in ("1000123456", "1099999999", "0000000001"):
        key = luhn_key(base)
        assert luhn_is_valid(base + key)
        assert [luhn_is_valid(base + str(d)) for d in range(10)].count(True) == 1


def test_known_luhn_numbers():
    assert luhn_is_valid("79927398713")
    assert not luhn_is_valid("79927398710")


def test_rpps_checks():
    assert check_rpps("10001234565") is None
    assert check_rpps("10001234566") == "invalid_rpps_key"
    assert check_rpps("1000123456") == "invalid_rpps_format"
    assert check_rpps("1000123456A") == "invalid_rpps_format"


def test_adeli_and_national_checks():
    assert check_adeli("750912345") is None
    assert check_adeli("2A0912345") is None
    assert check_adeli("75091234") == "invalid_adeli_format"
    assert check_national("8", "10001234565", "810001234565") is None
    assert check_national("8", "10001234565", "810001234566") == "national_id_mismatch"
    assert check_national("0", "750912345", "") is None
    assert check_national("3", "10001234565", "") == "invalid_id_type"


def test_split_national():
    assert split_national("810001234565") == ("rpps", "10001234565")
    assert split_national("0750912345") == ("adeli", "750912345")
    assert split_national("810001234566") is None
    assert split_national("hello") is None
