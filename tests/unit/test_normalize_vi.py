"""The Vietnamese normaliser, rule by rule: what the loudspeakers say for each written form.

One table, grouped by topic (issue 14, item 1): times, dates, numbers, money, units,
abbreviations, flood alarm levels, road codes and km markers, document numbers, rates
with slashes, ranges, fractions versus dates, roman numerals in context, phones and
addresses. tests/unit/test_normalize_corpus.py checks whole notices.
"""

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
    # administrative and local abbreviations
    ("HĐND xã", "Hội đồng nhân dân xã"),
    ("TYT xã", "trạm y tế xã"),
    ("sổ BHXH", "sổ bảo hiểm xã hội"),
    ("thẻ CCCD", "thẻ căn cước công dân"),
    ("đội PCCC", "đội phòng cháy chữa cháy"),
    ("kiểm tra ATTP", "kiểm tra an toàn thực phẩm"),
    ("Ban Chỉ huy PCTT-TKCN", "Ban Chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn"),
    ("dịch SXH, TCM", "dịch sốt xuất huyết, tay chân miệng"),
    ("UBBC xã", "Ủy ban bầu cử xã"),
    ("ĐT trực ban", "điện thoại trực ban"),
    ("gạo, dầu, v.v.", "gạo, dầu, vân vân"),
    # flood alarm levels
    ("BĐ1", "báo động một"),
    ("trên BĐ2 0,3 m", "trên báo động hai không phẩy ba mét"),
    ("mức BĐ 3", "mức báo động ba"),
    ("vượt BĐIII", "vượt báo động ba"),
    ("báo động II", "báo động hai"),
    ("báo động số 1", "báo động số một"),
    # road codes and km markers
    ("QL 6", "quốc lộ sáu"),
    ("QL.18", "quốc lộ mười tám"),
    ("ĐT.391", "đường tỉnh ba trăm chín mươi mốt"),
    ("ĐT 295B", "đường tỉnh hai trăm chín mươi lăm B"),
    ("TL 2", "tỉnh lộ hai"),
    ("ĐH.12", "đường huyện mười hai"),
    ("Km 15+200", "cây số mười lăm cộng hai trăm"),
    ("Km15+200", "cây số mười lăm cộng hai trăm"),
    ("tại km 8", "tại cây số tám"),
    ("Km 12 - Km 14", "cây số mười hai đến cây số mười bốn"),
    ("3 km 500 m", "ba ki-lô-mét năm trăm mét"),
    # document numbers and codes
    (
        "45/2024/QĐ-UBND",
        "số bốn mươi lăm năm hai nghìn không trăm hai mươi tư quyết định Ủy ban nhân dân",
    ),
    (
        "Nghị định số 100/2019/NĐ-CP",
        "Nghị định số một trăm năm hai nghìn không trăm mười chín nghị định Chính phủ",
    ),
    (
        "08/2024/TT-BTTTT",
        "số tám năm hai nghìn không trăm hai mươi tư thông tư Bộ Thông tin và Truyền thông",
    ),
    (
        "Công văn 1234/UBND-VP",
        "Công văn số một nghìn hai trăm ba mươi tư Ủy ban nhân dân văn phòng",
    ),
    ("Chỉ thị 15/CT-TTg", "Chỉ thị số mười lăm chỉ thị Thủ tướng"),
    (
        "Luật số 85/2015/QH13",
        "Luật số tám mươi lăm năm hai nghìn không trăm mười lăm Quốc hội khóa mười ba",
    ),
    ("NĐ-CP, QĐ-UBND", "nghị định Chính phủ, quyết định Ủy ban nhân dân"),
    ("TT và CP", "TT và CP"),  # alone these are not document codes
    # compound units with slashes
    ("30.000 đồng/hộ/tháng", "ba mươi nghìn đồng một hộ một tháng"),
    ("20 kg/sào", "hai mươi ki-lô-gam một sào"),
    ("65 tạ/ha", "sáu mươi lăm tạ một héc-ta"),
    ("1.250 người/km²", "một nghìn hai trăm năm mươi người trên ki-lô-mét vuông"),
    ("1.200 m³/s", "một nghìn hai trăm mét khối trên giây"),
    ("150 mm/24h", "một trăm năm mươi mi-li-mét trong hai mươi tư giờ"),
    ("2 lần/năm", "hai lần một năm"),
    ("0,65%/tháng", "không phẩy sáu mươi lăm phần trăm một tháng"),
    ("1,2 kg thóc/sào/vụ", "một phẩy hai ki-lô-gam thóc một sào một vụ"),
    ("ông/bà", "ông bà"),
    # ranges of dates, days, times and numbers
    ("từ 10-12/12", "từ ngày mười đến ngày mười hai tháng mười hai"),
    ("ngày 2-4/2/2026", "ngày hai đến ngày bốn tháng hai năm hai nghìn không trăm hai mươi sáu"),
    ("từ 16/6 - 22/6", "từ ngày mười sáu tháng sáu đến ngày hai mươi hai tháng sáu"),
    ("tháng 6-8", "tháng sáu đến tháng tám"),
    ("các ngày 14, 15/5", "các ngày mười bốn, mười lăm tháng năm"),
    ("thứ 2-6", "thứ hai đến thứ sáu"),
    ("thứ 2 - thứ 6", "thứ hai đến thứ sáu"),
    ("T2-T6", "thứ hai đến thứ sáu"),
    ("T7-CN", "thứ bảy đến chủ nhật"),
    ("thứ 3, 5, 7", "thứ ba, thứ năm, thứ bảy"),
    ("7-9h", "bảy đến chín giờ"),
    ("7h30-11h30", "bảy giờ ba mươi phút đến mười một giờ ba mươi phút"),
    ("20-25 kg", "hai mươi đến hai mươi lăm ki-lô-gam"),
    ("2026-2031", "hai nghìn không trăm hai mươi sáu đến hai nghìn không trăm ba mươi mốt"),
    # fractions versus dates, counts out of a total
    ("1/2 diện tích", "một phần hai diện tích"),
    ("ngày 1/2", "ngày một tháng hai"),
    ("chiếm 1/3", "chiếm một phần ba"),
    ("3/4 số hộ", "ba phần tư số hộ"),
    ("trước 1/3", "trước ngày một tháng ba"),
    ("412/520 hộ", "bốn trăm mười hai trên năm trăm hai mươi hộ"),
    ("19/19 tiêu chí", "mười chín trên mười chín tiêu chí"),
    ("trực 24/24h", "trực hai mươi tư trên hai mươi tư giờ"),
    # roman numerals only in their context
    ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
    ("quý IV", "quý bốn"),
    ("khóa XV", "khóa mười lăm"),
    ("Điều III", "Điều ba"),
    ("Chương II", "Chương hai"),
    ("Đại hội XIII", "Đại hội mười ba"),
    ("lần thứ IV", "lần thứ tư"),
    ("đợt I", "đợt một"),
    ("MC, CD, DC, MIX, vitamin C", "MC, CD, DC, MIX, vitamin C"),
    ("ông Nguyễn Văn A", "ông Nguyễn Văn A"),
    # money
    ("1,5 tr", "một phẩy năm triệu"),
    ("2tr", "hai triệu"),
    ("1tr2", "một triệu hai"),
    ("1tr5", "một triệu rưỡi"),
    ("2,5 tỷ đồng", "hai phẩy năm tỷ đồng"),
    ("1.500.000 đ", "một triệu năm trăm nghìn đồng"),
    ("1,500,000 đ", "một triệu năm trăm nghìn đồng"),
    ("1,500đ", "một nghìn năm trăm đồng"),
    ("80.000 VNĐ/tháng", "tám mươi nghìn đồng một tháng"),
    # decimals with either separator
    ("2.5 kg", "hai phẩy năm ki-lô-gam"),
    ("2.5 tấn", "hai phẩy năm tấn"),
    ("mục 3.5", "mục ba chấm năm"),
    ("1,234.5 kg", "một nghìn hai trăm ba mươi tư phẩy năm ki-lô-gam"),
    # temperatures, units, heights
    ("38,5°C", "ba mươi tám phẩy năm độ C"),
    ("22 kV", "hai mươi hai ki-lô-vôn"),
    ("250 kVA", "hai trăm năm mươi ki-lô-vôn-ampe"),
    ("180V", "một trăm tám mươi vôn"),
    ("dưới 1m2", "dưới một mét hai"),
    ("2 m3", "hai mét khối"),
    ("360 m²", "ba trăm sáu mươi mét vuông"),
    ("3 sào", "ba sào"),
    ("2 mẫu", "hai mẫu"),
    # times and weekdays
    ("19:30", "mười chín giờ ba mươi phút"),
    ("7 giờ kém 15", "bảy giờ kém mười lăm"),
    ("14:00", "mười bốn giờ"),
    ("thứ 7", "thứ bảy"),
    ("T7, CN", "thứ bảy, chủ nhật"),
    ("T4", "thứ tư"),
    ("T7/2024", "tháng bảy năm hai nghìn không trăm hai mươi tư"),
    # phones, hotlines, accounts
    ("0203 3812 345", "không hai không ba ba tám một hai ba bốn năm"),
    ("0366-123-456", "không ba sáu sáu một hai ba bốn năm sáu"),
    ("ĐT: 0912345678", "điện thoại: không chín một hai ba bốn năm sáu bảy tám"),
    ("1900 9095", "một chín không không chín không chín năm"),
    ("gọi ngay 114, ", "gọi ngay một một bốn, "),
    ("PCCC: 114;", "phòng cháy chữa cháy: một một bốn;"),
    ("có 114 hộ", "có một trăm mười bốn hộ"),
    ("số tài khoản 1234 5678", "số tài khoản một hai ba bốn năm sáu bảy tám"),
    # e-mail and web addresses spelled out
    ("xadongphong@gmail.com", "xa dong phong a còng gờ meo chấm com"),
    ("a.b@xa.vn", "a chấm bê a còng xa chấm vê en"),
    (
        "vanphong.ubnd@dongphong.gov.vn",
        "van phong chấm u bê en đê a còng dong phong chấm gờ o vê chấm vê en",
    ),
    ("moitruong@langso.vn", "moi truong a còng lang so chấm vê en"),
    ("https://dongphong.gov.vn.", "dong phong chấm gờ o vê chấm vê en."),
    ("www.npc.com.vn", "vê kép vê kép vê kép chấm en pê xê chấm com chấm vê en"),
    (
        "dichvucong.gov.vn/thu-tuc",
        "dich vu cong chấm gờ o vê chấm vê en gạch chéo thu gạch ngang tuc",
    ),
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
    assert len(CASES) >= 200


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
