"""The web page's words: one catalogue, Vietnamese first, English second.

Every string a person reads on the page comes from here, by key: templates call
``_("nav.devices")``, Python code ``t("ago.now")``, the page's JavaScript receives the keys
it needs in the page data. A test checks that both languages have every key.
Numbers and times are written the village's way (``12,5``; ``19:30 01/12``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LANGS: tuple[str, ...] = ("vi", "en")
DEFAULT_LANG = "vi"
#: Shown in the language switch, each in its own language.
LANG_NAMES: Mapping[str, str] = {"vi": "Tiếng Việt", "en": "English"}

VI: dict[str, str] = {
    "app.name": "Làng Số",
    "app.tagline": "Trạm thông tin của thôn",
    "a11y.skip": "Bỏ qua, đến nội dung chính",
    "lang.label": "Ngôn ngữ",
    "nav.label": "Trang quản lý",
    "nav.dashboard": "Tổng quan",
    "nav.devices": "Thiết bị",
    "nav.alerts": "Cảnh báo",
    "nav.users": "Người dùng",
    "footer.signed_in": "Đã đăng nhập: {name} · {role}",
    "footer.sign_out": "Đăng xuất",
    "footer.version": "Trạm Làng Số · phiên bản {version}",
    "role.admin": "Quản trị viên",
    "role.head": "Trưởng thôn",
    "role.technician": "Kỹ thuật viên",
    "status.online": "Trực tuyến",
    "status.degraded": "Suy giảm",
    "status.offline": "Mất kết nối",
    "status.unknown": "Chưa rõ",
    "severity.critical": "Nghiêm trọng",
    "severity.warning": "Cần chú ý",
    "kind.all": "Tất cả",
    "kind.ap": "Điểm phát wifi",
    "kind.sensor": "Cảm biến",
    "kind.button": "Nút bấm",
    "kind.speaker": "Loa",
    "kind.gateway": "Cổng kết nối",
    "ago.now": "vừa xong",
    "ago.minutes": "{n} phút trước",
    "ago.hours": "{n} giờ trước",
    "ago.days": "{n} ngày trước",
    "ago.never": "chưa bao giờ",
    "live.on": "Đang cập nhật trực tiếp",
    "live.off": "Tạm mất cập nhật trực tiếp",
    "public.title": "Trang thông tin của thôn",
    "public.welcome": "Chào mừng bà con đến với trang thông tin của thôn.",
    "public.staff": "Cán bộ thôn đăng nhập",
    "login.title": "Đăng nhập",
    "login.intro": "Dành cho trưởng thôn, tổ công nghệ số cộng đồng và quản trị viên.",
    "login.username": "Tên đăng nhập",
    "login.password": "Mật khẩu",
    "login.submit": "Đăng nhập",
    "login.failed": "Sai tên đăng nhập hoặc mật khẩu.",
    "login.disabled": "Tài khoản này đã bị khóa. Hãy liên hệ quản trị viên.",
    "login.throttled": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {s} giây.",
    "login.back": "Về trang chủ",
    "login.signed_out": "Bạn đã đăng xuất.",
    "dash.title": "Tổng quan",
    "dash.hello": "Xin chào, {name}",
    "dash.role": "Bạn đăng nhập với vai trò {role}.",
    "dash.health": "Tình trạng thiết bị",
    "dash.devices_total": "Tổng cộng {n} thiết bị",
    "dash.all_devices": "Xem tất cả thiết bị",
    "dash.open_alerts": "Cảnh báo đang mở",
    "dash.all_alerts": "Xem tất cả cảnh báo",
    "dash.on_air": "Đang phát",
    "dash.next": "Sắp phát",
    "dash.quiet": "Loa đang nghỉ.",
    "dash.emergency": "Khẩn cấp",
    "dash.none_next": "Chưa có buổi phát nào được lên lịch.",
    "alerts.title": "Cảnh báo",
    "alerts.open": "Đang mở",
    "alerts.recent": "Đã kết thúc gần đây",
    "alerts.none_open": "Không có cảnh báo nào. Mọi thiết bị đang ổn.",
    "alerts.none_recent": "Chưa có cảnh báo nào kết thúc.",
    "alerts.ack": "Tôi đã biết",
    "alerts.acked": "{name} đã xác nhận {ago}",
    "alerts.acked_ok": "Đã xác nhận cảnh báo.",
    "alerts.raised": "Bắt đầu {ago}",
    "alerts.cleared": "Kết thúc {ago}",
    "alert.rule.offline": "Thiết bị mất kết nối",
    "alert.rule.clock_unsynced": "Đồng hồ của trạm chưa được đồng bộ",
    "alert.rule.playout_failed": "Phát thông báo bị lỗi",
    "alert.hub": "Trạm",
    "alert.threshold": "Vượt ngưỡng: {rule}",
    "devices.title": "Thiết bị",
    "devices.search": "Tìm thiết bị",
    "devices.search_hint": "Tên hoặc mã thiết bị",
    "devices.search_go": "Tìm",
    "devices.filter": "Lọc theo loại",
    "devices.none": "Chưa có thiết bị nào gửi dữ liệu.",
    "devices.no_match": "Không tìm thấy thiết bị phù hợp.",
    "devices.last_seen": "Lần cuối: {ago}",
    "device.back": "Tất cả thiết bị",
    "device.since": "từ {ago}",
    "device.details": "Thông tin",
    "device.id": "Mã thiết bị",
    "device.kind": "Loại",
    "device.source": "Nguồn dữ liệu",
    "device.first_seen": "Lần đầu thấy",
    "device.last_seen": "Lần cuối thấy",
    "device.charts": "Biểu đồ",
    "device.range": "Khoảng thời gian",
    "device.no_data": "Chưa có số liệu trong khoảng thời gian này.",
    "device.alerts": "Cảnh báo của thiết bị",
    "device.events": "Sự kiện gần đây",
    "device.no_events": "Chưa có sự kiện nào.",
    "range.24h": "24 giờ",
    "range.7d": "7 ngày",
    "range.30d": "30 ngày",
    "event.online": "Báo trực tuyến",
    "event.offline": "Báo mất kết nối",
    "event.reading": "Gửi số liệu",
    "event.button": "Nút được bấm: {action}",
    "event.announce": "Yêu cầu phát thông báo",
    "reason.said_online": "Thiết bị báo đã kết nối lại.",
    "reason.said_offline": "Thiết bị báo ngắt kết nối (có thể do mất điện hoặc mất mạng).",
    "reason.data": "Có số liệu mới.",
    "reason.silent": "Không nhận được số liệu trong {n} phút.",
    "reason.thresholds": "Vượt ngưỡng: {rules}.",
    "chart.summary": "{label}: thấp nhất {min}, cao nhất {max}, mới nhất {last}",
    "chart.min": "thấp nhất",
    "chart.max": "cao nhất",
    "metric.clients": "Người dùng wifi",
    "metric.rx_bytes": "Tải xuống",
    "metric.tx_bytes": "Tải lên",
    "metric.signal_dbm": "Cường độ sóng",
    "metric.noise_dbm": "Nhiễu",
    "metric.channel": "Kênh",
    "metric.uptime_s": "Thời gian chạy",
    "metric.cpu_pct": "CPU",
    "metric.mem_pct": "Bộ nhớ",
    "metric.temp_c": "Nhiệt độ",
    "metric.water_level_cm": "Mực nước",
    "metric.battery_pct": "Pin",
    "metric.temperature_c": "Nhiệt độ",
    "metric.humidity_pct": "Độ ẩm",
    "metric.rain_mm": "Lượng mưa",
    "users.title": "Người dùng",
    "users.add": "Thêm người dùng",
    "users.username": "Tên đăng nhập",
    "users.username_hint": "2–32 ký tự: chữ không dấu, chữ số, dấu chấm, gạch dưới, gạch ngang.",
    "users.role": "Vai trò",
    "users.password": "Mật khẩu",
    "users.password_hint": "Ít nhất 10 ký tự.",
    "users.add_submit": "Thêm người dùng",
    "users.change_role": "Đổi vai trò",
    "users.new_password": "Mật khẩu mới",
    "users.reset_password": "Đặt lại mật khẩu",
    "users.disable": "Khóa tài khoản",
    "users.enable": "Mở khóa tài khoản",
    "users.disabled": "Đã khóa",
    "users.active": "Đang hoạt động",
    "users.you": "bạn",
    "users.list": "Danh sách người dùng",
    "users.manage": "Đổi vai trò, mật khẩu, khóa tài khoản",
    "users.confirm_disable": "Khóa tài khoản này? Người đó sẽ bị đăng xuất ngay.",
    "users.ok.added": "Đã thêm người dùng.",
    "users.ok.role": "Đã đổi vai trò.",
    "users.ok.password": "Đã đặt lại mật khẩu. Các phiên đăng nhập cũ đã kết thúc.",
    "users.ok.disabled": "Đã khóa tài khoản.",
    "users.ok.enabled": "Đã mở khóa tài khoản.",
    "users.err.exists": "Tên đăng nhập này đã có người dùng.",
    "users.err.short": "Mật khẩu quá ngắn: cần ít nhất 10 ký tự.",
    "users.err.easy": "Mật khẩu quá dễ đoán. Hãy chọn mật khẩu khác.",
    "users.err.name": "Tên đăng nhập chỉ gồm 2–32 chữ không dấu, chữ số, '.', '_' hoặc '-'.",
    "users.err.invalid": "Thông tin chưa hợp lệ.",
    "users.err.missing": "Không tìm thấy người dùng này.",
    "users.err.last_admin": "Phải còn ít nhất một quản trị viên đang hoạt động.",
    "error.title": "Có lỗi",
    "error.back": "Về trang tổng quan",
    "error.home": "Về trang chủ",
    "error.forbidden": "Không có quyền truy cập",
    "error.forbidden_text": "Trang này dành cho: {roles}. Bạn đang đăng nhập với vai trò {role}.",
    "error.csrf": "Yêu cầu bị từ chối",
    "error.csrf_text": "Biểu mẫu đã hết hạn hoặc không được gửi từ trang này (kiểm tra CSRF). "
    "Hãy tải lại trang rồi thử lại.",
    "error.not_found": "Không tìm thấy",
    "error.not_found_text": "Không có trang hoặc thiết bị này.",
    "error.throttled": "Tạm khóa đăng nhập",
}

EN: dict[str, str] = {
    "app.name": "Làng Số",
    "app.tagline": "The village hub",
    "a11y.skip": "Skip to the main content",
    "lang.label": "Language",
    "nav.label": "Staff pages",
    "nav.dashboard": "Overview",
    "nav.devices": "Devices",
    "nav.alerts": "Alerts",
    "nav.users": "Users",
    "footer.signed_in": "Signed in as {name} · {role}",
    "footer.sign_out": "Sign out",
    "footer.version": "Làng Số hub · version {version}",
    "role.admin": "Administrator",
    "role.head": "Village head",
    "role.technician": "Technician",
    "status.online": "Online",
    "status.degraded": "Degraded",
    "status.offline": "Offline",
    "status.unknown": "Unknown",
    "severity.critical": "Critical",
    "severity.warning": "Warning",
    "kind.all": "All",
    "kind.ap": "Wi-Fi access point",
    "kind.sensor": "Sensor",
    "kind.button": "Button",
    "kind.speaker": "Speaker",
    "kind.gateway": "Gateway",
    "ago.now": "just now",
    "ago.minutes": "{n} min ago",
    "ago.hours": "{n} h ago",
    "ago.days": "{n} days ago",
    "ago.never": "never",
    "live.on": "Live updates on",
    "live.off": "Live updates paused",
    "public.title": "Village information page",
    "public.welcome": "Welcome to the village's information page.",
    "public.staff": "Village staff: sign in",
    "login.title": "Sign in",
    "login.intro": "For the village head, the community digital technology team and "
    "administrators.",
    "login.username": "User name",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Wrong user name or password.",
    "login.disabled": "This account is disabled. Ask an administrator.",
    "login.throttled": "Too many failed sign-ins. Try again in {s} seconds.",
    "login.back": "Back to the home page",
    "login.signed_out": "You are signed out.",
    "dash.title": "Overview",
    "dash.hello": "Hello, {name}",
    "dash.role": "You are signed in as {role}.",
    "dash.health": "Device health",
    "dash.devices_total": "{n} devices in all",
    "dash.all_devices": "See all devices",
    "dash.open_alerts": "Open alerts",
    "dash.all_alerts": "See all alerts",
    "dash.on_air": "On air now",
    "dash.next": "Next broadcasts",
    "dash.quiet": "The loudspeakers are quiet.",
    "dash.emergency": "Emergency",
    "dash.none_next": "No broadcast is scheduled.",
    "alerts.title": "Alerts",
    "alerts.open": "Open",
    "alerts.recent": "Recently cleared",
    "alerts.none_open": "No open alerts. Every device is fine.",
    "alerts.none_recent": "No alert has cleared yet.",
    "alerts.ack": "I'm on it",
    "alerts.acked": "Acknowledged by {name} {ago}",
    "alerts.acked_ok": "Alert acknowledged.",
    "alerts.raised": "Started {ago}",
    "alerts.cleared": "Cleared {ago}",
    "alert.rule.offline": "Device offline",
    "alert.rule.clock_unsynced": "The hub's clock is not synchronised",
    "alert.rule.playout_failed": "A broadcast failed",
    "alert.hub": "Hub",
    "alert.threshold": "Threshold crossed: {rule}",
    "devices.title": "Devices",
    "devices.search": "Search devices",
    "devices.search_hint": "Name or id",
    "devices.search_go": "Search",
    "devices.filter": "Filter by kind",
    "devices.none": "No device has reported yet.",
    "devices.no_match": "No device matches.",
    "devices.last_seen": "Last seen {ago}",
    "device.back": "All devices",
    "device.since": "since {ago}",
    "device.details": "Details",
    "device.id": "Device id",
    "device.kind": "Kind",
    "device.source": "Data source",
    "device.first_seen": "First seen",
    "device.last_seen": "Last seen",
    "device.charts": "Charts",
    "device.range": "Time range",
    "device.no_data": "No readings in this period.",
    "device.alerts": "This device's alerts",
    "device.events": "Recent events",
    "device.no_events": "No events yet.",
    "range.24h": "24 hours",
    "range.7d": "7 days",
    "range.30d": "30 days",
    "event.online": "Reported online",
    "event.offline": "Reported offline",
    "event.reading": "Sent readings",
    "event.button": "Button pressed: {action}",
    "event.announce": "Announcement request",
    "reason.said_online": "The device said it is back online.",
    "reason.said_offline": "The device said it went offline (power or network lost).",
    "reason.data": "New readings arrived.",
    "reason.silent": "No readings for {n} min.",
    "reason.thresholds": "Threshold crossed: {rules}.",
    "chart.summary": "{label}: lowest {min}, highest {max}, latest {last}",
    "chart.min": "lowest",
    "chart.max": "highest",
    "metric.clients": "Wi-Fi users",
    "metric.rx_bytes": "Download",
    "metric.tx_bytes": "Upload",
    "metric.signal_dbm": "Signal strength",
    "metric.noise_dbm": "Noise",
    "metric.channel": "Channel",
    "metric.uptime_s": "Uptime",
    "metric.cpu_pct": "CPU",
    "metric.mem_pct": "Memory",
    "metric.temp_c": "Temperature",
    "metric.water_level_cm": "Water level",
    "metric.battery_pct": "Battery",
    "metric.temperature_c": "Temperature",
    "metric.humidity_pct": "Humidity",
    "metric.rain_mm": "Rainfall",
    "users.title": "Users",
    "users.add": "Add a user",
    "users.username": "User name",
    "users.username_hint": "2–32 characters: letters without accents, digits, '.', '_', '-'.",
    "users.role": "Role",
    "users.password": "Password",
    "users.password_hint": "At least 10 characters.",
    "users.add_submit": "Add the user",
    "users.change_role": "Change role",
    "users.new_password": "New password",
    "users.reset_password": "Reset password",
    "users.disable": "Disable account",
    "users.enable": "Enable account",
    "users.disabled": "Disabled",
    "users.active": "Active",
    "users.you": "you",
    "users.list": "All users",
    "users.manage": "Change role, password, access",
    "users.confirm_disable": "Disable this account? The person is signed out at once.",
    "users.ok.added": "User added.",
    "users.ok.role": "Role changed.",
    "users.ok.password": "Password reset. The old sessions have ended.",
    "users.ok.disabled": "Account disabled.",
    "users.ok.enabled": "Account enabled.",
    "users.err.exists": "This user name is taken.",
    "users.err.short": "Password too short: at least 10 characters.",
    "users.err.easy": "Password too easy to guess. Choose another one.",
    "users.err.name": "User name: 2–32 letters without accents, digits, '.', '_' or '-'.",
    "users.err.invalid": "Something in the form is not valid.",
    "users.err.missing": "No such user.",
    "users.err.last_admin": "At least one enabled administrator must remain.",
    "error.title": "Something went wrong",
    "error.back": "Back to the overview",
    "error.home": "Back to the home page",
    "error.forbidden": "Not allowed",
    "error.forbidden_text": "This page is for: {roles}. You are signed in as {role}.",
    "error.csrf": "Request refused",
    "error.csrf_text": "The form has expired or was not sent from this site (CSRF check). "
    "Reload the page and try again.",
    "error.not_found": "Not found",
    "error.not_found_text": "There is no such page or device.",
    "error.throttled": "Sign-in paused",
}

# The residents' side and the staff's announcement pages keep their words in modules of
# their own; one catalogue all the same (a key defined twice is a mistake: the test says).
from hub.web import i18n_public, i18n_staff  # noqa: E402

CATALOGUE: Mapping[str, Mapping[str, str]] = {
    "vi": {**VI, **i18n_public.VI, **i18n_staff.VI},
    "en": {**EN, **i18n_public.EN, **i18n_staff.EN},
}

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def pick_lang(query: str | None, cookie: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGS:
            return candidate
    return DEFAULT_LANG


class Translator:
    """``t("ago.minutes", n=3)``: the text in one language (else Vietnamese, else the key)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG
        self._texts = CATALOGUE[self.lang]

    def __call__(self, key: str, /, **values: object) -> str:
        text = self._texts.get(key) or VI.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._texts

    def subset(self, prefixes: tuple[str, ...]) -> dict[str, str]:
        """The keys the page's script needs, as plain data."""
        return {k: v for k, v in self._texts.items() if k.startswith(prefixes)}

    # -- numbers and times, written the way this language writes them ------------------
    def number(self, value: float, digits: int = 1) -> str:
        if value == int(value) and abs(value) < 1e15:
            text = f"{int(value):,}"
        else:
            text = f"{value:,.{digits}f}".rstrip("0").rstrip(".")
        if self.lang == "vi":  # 1.234,5
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text.replace("-", "−")

    def ago(self, ts: float | None, now: float) -> str:
        if ts is None:
            return self("ago.never")
        s = max(0.0, now - ts)
        if s < 60:
            return self("ago.now")
        if s < 3600:
            return self("ago.minutes", n=int(s // 60))
        if s < 86_400:
            return self("ago.hours", n=int(s // 3600))
        return self("ago.days", n=int(s // 86_400))

    def when(self, ts: float | None, tz: ZoneInfo) -> str:
        if ts is None:
            return "—"
        d = datetime.fromtimestamp(ts, UTC).astimezone(tz)
        if self.lang == "vi":
            return d.strftime("%H:%M %d/%m/%Y")
        return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}, {d:%H:%M}"

    def day(self, d: datetime) -> str:
        """A short date for chart ticks: 01/12 or 1 Dec."""
        if self.lang == "vi":
            return d.strftime("%d/%m")
        return f"{d.day} {_MONTHS_EN[d.month - 1]}"
