"""The pages' words in English and Chinese, and which of the two a reader gets.

Pure: no I/O. A page's language is the one named in its address (``?lang=``, set by the language
switch or by the link's locale), else the first of ``Accept-Language`` the pages speak, else English.
"""

from __future__ import annotations

LOCALES = ("en", "zh")

TEXT: dict[str, tuple[str, str]] = {  # key → (English, Chinese)
    "lang.name": ("English", "中文"),
    "prefs.title": ("Your message preferences", "消息偏好设置"),
    "prefs.intro": ("Choose what we may send you and how. Changes apply to the next message.",
                    "选择我们可以向您发送的内容和方式。更改将从下一条消息起生效。"),
    "prefs.channels": ("Channels", "接收渠道"),
    "prefs.channels.hint": ("Where we may reach you with news and offers.", "我们可以通过哪些渠道向您发送资讯和优惠。"),
    "prefs.channel.law": ("Closing it stops every message here, account and security notices included.",
                          "关闭后此渠道将不再发送任何消息，包括账户与安全通知。"),
    "prefs.channel.service": ("Closing it stops news and offers; receipts, account and security notices still come here.",
                              "关闭后不再发送资讯和优惠；订单回执、账户与安全通知仍会发送。"),
    "prefs.channel.stop_all": ("Stop everything here", "此渠道全部停止"),
    "prefs.channel.stop_all.note": ("Every message on this channel stops, receipts, account and security notices included.",
                                    "此渠道的所有消息都将停止，包括订单回执、账户与安全通知。"),
    "prefs.categories": ("Topics", "内容类别"),
    "prefs.grid": ("Topics by channel", "按渠道选择内容"),
    "confirm.title": ("Confirm your choice", "确认您的选择"),
    "confirm.ask": ("You asked to hear from us again by {channel}. Confirm it was you, and offers and news will come "
                    "there again.",
                    "您申请重新通过{channel}接收我们的消息。请确认是您本人操作，之后资讯和优惠将重新通过该渠道发送。"),
    "confirm.button": ("Confirm", "确认"),
    "confirm.done": ("Thank you: offers and news will come by {channel} again.", "谢谢：资讯和优惠将重新通过{channel}发送。"),
    "prefs.grid.hint": ("Fine-tune: a topic can be welcome on one channel and not on another.",
                        "细化设置：同一类内容可以只在部分渠道接收。"),
    "prefs.grid.cell": ("{topic} by {channel}", "通过{channel}接收{topic}"),
    "prefs.categories.hint": ("What our marketing messages may be about.", "营销消息可以涉及的内容。"),
    "prefs.quiet": ("Quiet hours", "免打扰时段"),
    "prefs.quiet.on": ("No marketing messages during these hours", "在此时段内不接收营销消息"),
    "prefs.quiet.start": ("From", "开始"),
    "prefs.quiet.end": ("Until", "结束"),
    "prefs.quiet.tz": ("Time zone", "时区"),
    "prefs.max_week": ("At most this many marketing messages a week (0: no limit of your own)",
                       "每周最多接收的营销消息数（0 表示不设上限）"),
    "prefs.limits": ("How often", "接收频率"),
    "prefs.pause": ("Take a break", "暂停接收"),
    "prefs.pause.hint": ("Pause all marketing messages for a while.", "暂时停止接收所有营销消息。"),
    "prefs.pause.week": ("Pause for 1 week", "暂停 1 周"),
    "prefs.pause.month": ("Pause for 1 month", "暂停 1 个月"),
    "prefs.pause.until": ("Pause until", "暂停至"),
    "prefs.pause.date": ("Pause until this date", "暂停至所选日期"),
    "prefs.paused": ("Marketing messages are paused until", "营销消息已暂停，直至"),
    "prefs.resume": ("Resume now", "立即恢复"),
    "prefs.unsub_all": ("Unsubscribe from all marketing", "退订全部营销消息"),
    "prefs.unsub_all.hint": ("Overrides every choice above for marketing; account notices still come.",
                             "优先于以上所有营销相关设置；账户通知仍会发送。"),
    "prefs.save": ("Save preferences", "保存设置"),
    "prefs.saved": ("Your preferences are saved.", "您的设置已保存。"),
    "prefs.stale": ("Your preferences changed while this page was open (perhaps in another window). Nothing was "
                    "overwritten: here they are as they are now; make your changes again.",
                    "在您打开此页面期间，设置已被更改（可能是在另一个窗口中）。我们没有覆盖任何内容：以下为当前设置，请重新修改。"),
    "prefs.invalid": ("This could not be saved:", "无法保存："),
    "link.bad.title": ("This link does not work", "此链接无效"),
    "link.forged": ("This link is not one we sent, or it was changed. Nothing was changed. Please use the link "
                    "from your latest message.", "此链接并非由我们发送，或已被修改。未做任何更改。请使用最新消息中的链接。"),
    "link.expired": ("This link has expired. Nothing was changed. Please use the link from a more recent message.",
                     "此链接已过期。未做任何更改。请使用较新消息中的链接。"),
    "link.malformed": ("This link is incomplete. Nothing was changed. Please copy the whole link from your message.",
                       "此链接不完整。未做任何更改。请从消息中复制完整链接。"),
    "unsub.title": ("Unsubscribe from marketing email", "退订营销邮件"),
    "unsub.confirm": ("Stop sending me marketing email.", "不再向我发送营销邮件。"),
    "unsub.button": ("Unsubscribe", "退订"),
    "unsub.done": ("You are unsubscribed from marketing email.", "您已退订营销邮件。"),
    "unsub.more": ("Manage all your preferences", "管理全部偏好设置"),
    "csrf.failed": ("This form expired or did not come from this page. Nothing was changed; please try again.",
                    "表单已失效或并非来自本页面。未做任何更改，请重试。"),
    "desk.title": ("Recovery desk", "客户关怀工作台"),
    "desk.signin": ("Sign in", "登录"),
    "desk.key": ("Support API key", "客服 API 密钥"),
    "desk.signin.failed": ("That key is unknown, revoked, or has no support role.", "该密钥无效、已吊销或没有客服权限。"),
    "desk.signout": ("Sign out", "退出"),
    "desk.queue": ("Queue", "任务队列"),
    "desk.health": ("Campaign health", "活动健康度"),
    "desk.filter.all": ("All open", "全部未结"),
    "desk.filter.mine": ("Mine", "我的"),
    "desk.filter.unclaimed": ("Unclaimed", "未认领"),
    "desk.col.priority": ("Priority", "优先级"),
    "desk.col.task": ("Task", "任务"),
    "desk.col.user": ("User", "用户"),
    "desk.col.channel": ("Channel", "渠道"),
    "desk.col.sla": ("SLA", "时限"),
    "desk.col.time": ("Time", "时间"),
    "desk.col.text": ("Text", "内容"),
    "desk.col.campaign": ("Campaign", "活动"),
    "desk.col.category": ("Category", "类别"),
    "desk.col.decision": ("Decision", "决定"),
    "desk.col.source": ("Source", "来源"),
    "desk.col.actor": ("By", "操作者"),
    "desk.col.field": ("Field", "字段"),
    "desk.col.change": ("Old → new", "旧值 → 新值"),
    "desk.col.assignee": ("Assignee", "处理人"),
    "desk.overdue": ("overdue by {span}", "已超时 {span}"),
    "desk.left": ("{span} left", "剩余 {span}"),
    "desk.span": ("{hours}h {minutes:02d}m", "{hours}小时{minutes:02d}分"),
    "desk.status.OPEN": ("Open", "待处理"),
    "desk.status.CLAIMED": ("Claimed", "处理中"),
    "desk.status.RESOLVED": ("Resolved", "已结案"),
    "class.marketing": ("marketing", "营销"),
    "class.transactional": ("transactional", "交易通知"),
    "class.service": ("service", "服务"),
    "value.on": ("on", "开启"),
    "value.off": ("off", "关闭"),
    "value.none": ("—", "—"),
    "desk.empty": ("No open tasks.", "暂无未结任务。"),
    "desk.live": ("New tasks appear here as they arrive.", "新任务到达后会自动显示在此处。"),
    "desk.task": ("Task", "任务"),
    "desk.replies": ("Replies", "用户回复"),
    "desk.score": ("negative", "负面概率"),
    "desk.touches": ("Touches that led here", "相关触达"),
    "desk.decision.sent": ("sent", "已发送"),
    "desk.holds": ("Hold", "营销冷却"),
    "desk.hold.until": ("Marketing held until", "营销暂停至"),
    "desk.hold.none": ("No hold", "无冷却"),
    "desk.prefs": ("Preferences", "偏好设置"),
    "desk.consent": ("Consent history", "授权记录"),
    "desk.claim": ("Claim", "认领"),
    "desk.resolve": ("Resolve", "结案"),
    "desk.outcome": ("Outcome", "处理结果"),
    "desk.note": ("Note", "备注"),
    "desk.lift": ("Lift the hold: marketing may reach the user again", "解除冷却：允许再次向该用户发送营销消息"),
    "desk.claimed_by": ("This task is claimed by", "此任务已被认领："),
    "desk.resolved": ("This task is resolved.", "此任务已结案。"),
    "desk.status": ("Status", "状态"),
    "desk.experience": ("Experience health, last 7 days", "近 7 天体验健康度"),
    "desk.campaigns": ("Campaigns by fatigue index, last 7 days", "近 7 天活动疲劳指数排行"),
    "desk.fatigue": ("Fatigue index", "疲劳指数"),
    "desk.trend": ("Last 7 days", "近 7 天走势"),
    "desk.too_few": ("too few touches", "触达太少"),
    "desk.touches_n": ("Touches", "触达数"),
    "desk.neg_rate": ("Negative replies", "负面回复率"),
    "desk.optout_rate": ("Opt-outs", "退订率"),
    "desk.complaint_rate": ("Complaints", "投诉率"),
    "desk.no_campaigns": ("No campaign has figures in the last 7 days.", "近 7 天没有活动数据。"),
    "desk.tasks_opened": ("Tasks opened", "新建任务"),
    "desk.in_sla": ("Resolved within SLA", "按时结案率"),
    "desk.recovered": ("Recovered", "挽回率"),
    "desk.back": ("Back to the queue", "返回队列"),
    "desk.not_found": ("No such task.", "没有此任务。"),
    "desk.none": ("none", "无"),
    "yes": ("on", "开启"),
    "no": ("off", "关闭"),
}


def negotiate(requested: str, accept_language: str) -> str:
    """The locale a page is rendered in."""
    if requested in LOCALES:
        return requested
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().split("-", 1)[0].lower()
        if lang in LOCALES and q > 0:
            ranked.append((-q, i, lang))
    return min(ranked)[2] if ranked else "en"


def words(locale: str) -> dict[str, str]:
    """Every text of one locale, for a template's ``t``."""
    column = LOCALES.index(locale)
    return {key: pair[column] for key, pair in TEXT.items()}
