"""The Vietnamese normaliser: what the loudspeakers say for times, dates, numbers, money, units."""

from __future__ import annotations

import unicodedata

import pytest

from audio.normalize_vi import normalize, read_number

CASES = [
    # times
    ("19h30", "mười chín giờ ba mươi phút"),
    ("19h", "mười chín giờ"),
    ("7:05", "bảy giờ năm phút"),
    ("lúc 7:00 sáng", "lúc bảy giờ sáng"),
    ("7g30", "bảy giờ ba mươi phút"),
    ("từ 7h-11h", "từ bảy giờ đến mười một giờ"),
    ("tỉ số 2:75", "tỉ số hai:bảy mươi lăm"),
    # dates
    ("5/12/2026", "ngày năm tháng mười hai năm hai nghìn không trăm hai mươi sáu"),
    ("ngày 05/12/2026", "ngày năm tháng mười hai năm hai nghìn không trăm hai mươi sáu"),
    ("tháng 12/2026", "tháng mười hai năm hai nghìn không trăm hai mươi sáu"),
    ("ngày 4/5", "ngày bốn tháng năm"),
    ("hạn chót 30/4", "hạn chót ngày ba mươi tháng tư"),
    ("số nhà 5/12", "số nhà năm trên mười hai"),
    ("thứ 2, 5/12", "thứ hai, ngày năm tháng mười hai"),
    ("tháng 4", "tháng tư"),
    ("thứ 4", "thứ tư"),
    ("lần thứ 1", "lần thứ nhất"),
    # number reading rules
    ("10", "mười"),
    ("11", "mười một"),
    ("14", "mười bốn"),
    ("15", "mười lăm"),
    ("21", "hai mươi mốt"),
    ("24", "hai mươi tư"),
    ("25", "hai mươi lăm"),
    ("101", "một trăm linh một"),
    ("105", "một trăm linh năm"),
    ("110", "một trăm mười"),
    ("1005", "một nghìn không trăm linh năm"),
    ("2026", "hai nghìn không trăm hai mươi sáu"),
    ("15000", "mười lăm nghìn"),
    ("1.000.500", "một triệu năm trăm"),
    ("2500000000", "hai tỷ năm trăm triệu"),
    ("0", "không"),
    # grouping and decimals
    ("50.000", "năm mươi nghìn"),
    ("1,5", "một phẩy năm"),
    ("2,05", "hai phẩy không năm"),
    ("0,5", "không phẩy năm"),
    ("3.5", "ba chấm năm"),
    # money
    ("50.000đ", "năm mươi nghìn đồng"),
    ("50.000 đồng", "năm mươi nghìn đồng"),
    ("2 triệu", "hai triệu"),
    ("1.200.000 VNĐ", "một triệu hai trăm nghìn đồng"),
    ("50k", "năm mươi nghìn"),
    ("50.000đ/kg", "năm mươi nghìn đồng một ki-lô-gam"),
    ("200.000 đồng/người", "hai trăm nghìn đồng một người"),
    # units
    ("1,5 m", "một phẩy năm mét"),
    ("120 cm", "một trăm hai mươi xăng-ti-mét"),
    ("mưa 80 mm", "mưa tám mươi mi-li-mét"),
    ("3 km", "ba ki-lô-mét"),
    ("20kg", "hai mươi ki-lô-gam"),
    ("500g", "năm trăm gam"),
    ("35°C", "ba mươi lăm độ C"),
    ("-5°C", "âm năm độ C"),
    ("20-25°C", "hai mươi đến hai mươi lăm độ C"),
    ("50%", "năm mươi phần trăm"),
    ("1,5%", "một phẩy năm phần trăm"),
    ("60 km/h", "sáu mươi ki-lô-mét trên giờ"),
    ("100m2", "một trăm mét vuông"),
    ("2 ha", "hai héc-ta"),
    # abbreviations: whole word, upper case only
    ("UBND xã", "Ủy ban nhân dân xã"),
    ("NTM", "nông thôn mới"),
    ("HTX", "hợp tác xã"),
    ("THCS", "trung học cơ sở"),
    ("THPT", "trung học phổ thông"),
    ("BHYT", "bảo hiểm y tế"),
    ("MTTQ", "Mặt trận Tổ quốc"),
    ("CA xã", "công an xã"),
    ("ca trực, Ca sĩ, CAM", "ca trực, Ca sĩ, CAM"),
    ("QL1A", "quốc lộ một A"),
    # phone numbers: digit by digit
    ("0912 345 678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("0912345678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("0912.345.678", "không chín một hai ba bốn năm sáu bảy tám"),
    ("+84 912 345 678", "cộng tám bốn chín một hai ba bốn năm sáu bảy tám"),
    ("gọi 113", "gọi một một ba"),
    ("SĐT: 0912345678", "số điện thoại: không chín một hai ba bốn năm sáu bảy tám"),
    # sentences
    (
        "Cuộc họp bắt đầu lúc 19h30 tại nhà văn hóa.",
        "Cuộc họp bắt đầu lúc mười chín giờ ba mươi phút tại nhà văn hóa.",
    ),
    (
        "UBND xã thu 50.000đ/hộ trước ngày 15/1/2027.",
        "Ủy ban nhân dân xã thu năm mươi nghìn đồng một hộ trước ngày mười lăm tháng một"
        " năm hai nghìn không trăm hai mươi bảy.",
    ),
    ("Thông báo của thôn Đông về việc tiêm phòng.", "Thông báo của thôn Đông về việc tiêm phòng."),
]


@pytest.mark.parametrize(("text", "spoken"), CASES, ids=[c[0] for c in CASES])
def test_normalize(text: str, spoken: str) -> None:
    assert normalize(text) == spoken


@pytest.mark.parametrize("text", [c[0] for c in CASES] + [c[1] for c in CASES])
def test_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_decomposed_input_is_composed() -> None:
    # iOS and macOS send NFD: "Ủy" as U + combining hook + combining dot...
    nfd = unicodedata.normalize("NFD", "Hội nghị lúc 19h")
    assert normalize(nfd) == "Hội nghị lúc mười chín giờ"
    assert normalize(nfd) == unicodedata.normalize("NFC", normalize(nfd))


def test_no_digit_survives_a_typical_announcement() -> None:
    text = (
        "Thông báo: từ 7h-11h ngày 5/12/2026, HTX thu 1.500.000đ/ha, "
        "nước dâng 1,5 m, gió 60 km/h; liên hệ 0912 345 678 hoặc gọi 113."
    )
    assert not any(c.isdigit() for c in normalize(text))


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1_000_000_005, "một tỷ không trăm linh năm"),
        (1_000_000_000_000, "một nghìn tỷ"),
        (21_000, "hai mươi mốt nghìn"),
        (105_000, "một trăm linh năm nghìn"),
    ],
)
def test_read_number_large(n: int, words: str) -> None:
    assert read_number(n) == words
