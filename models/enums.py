"""Closed vocabularies of the domain, stored by their value (lower-case ASCII)."""

from __future__ import annotations

import enum


class Language(enum.StrEnum):
    TR = "tr"
    EN = "en"


class Channel(enum.StrEnum):
    """Where a contact came from (R1): the channel is a parameter of the one intake path."""

    PHONE = "phone"
    DESK = "desk"
    WEB = "web"
    EMAIL = "email"
    SMS = "sms"
    SOCIAL_MEDIA = "social_media"
    PETITION = "petition"  # post, petition and CİMER referrals (R1.6)
    FIELD_TEAM = "field_team"
    NEIGHBOURHOOD_MEETING = "neighbourhood_meeting"
    MAYORS_OFFICE = "mayors_office"
    SWITCHBOARD = "switchboard"


class TicketKind(enum.StrEnum):
    """istek / talep / şikayet / öneri / bilgi."""

    WISH = "wish"
    REQUEST = "request"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    INFORMATION = "information"


class TicketStatus(enum.StrEnum):
    NEW = "new"
    FORWARDED = "forwarded"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CITIZEN = "waiting_on_citizen"
    REFERRED_EXTERNALLY = "referred_externally"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    MERGED = "merged"


OPEN_STATUSES = frozenset(  # not resolved, closed or merged: dedup attaches here
    {
        TicketStatus.NEW,
        TicketStatus.FORWARDED,
        TicketStatus.IN_PROGRESS,
        TicketStatus.WAITING_ON_CITIZEN,
        TicketStatus.REFERRED_EXTERNALLY,
        TicketStatus.REOPENED,
    }
)


class SlaUnit(enum.StrEnum):
    WORKING_HOURS = "working_hours"
    CALENDAR_HOURS = "calendar_hours"


class LegalClock(enum.StrEnum):
    """Statutory deadlines kept beside the internal SLA (engineering.md §5)."""

    NONE = "none"
    PETITION_30_DAYS = "petition_30_days"  # Law 3071 / CİMER: 30 calendar days
    INFORMATION_15_WORKING_DAYS = "information_15_working_days"  # Law 4982
    KVKK_30_DAYS = "kvkk_30_days"  # Law 6698 data-subject requests


class PhoneType(enum.StrEnum):
    MOBILE = "mobile"
    HOME = "home"
    WORK = "work"
    OTHER = "other"


class Role(enum.StrEnum):
    """Staff roles of R9.1."""

    AGENT = "agent"
    SWITCHBOARD_OPERATOR = "switchboard_operator"
    DESK_STAFF = "desk_staff"
    FIELD_TEAM = "field_team"
    SOCIAL_MEDIA = "social_media"
    UNIT_CHIEF = "unit_chief"
    DEPARTMENT_LIAISON = "department_liaison"
    SUPERVISOR = "supervisor"
    ADVISOR = "advisor"
    MAYORS_OFFICE = "mayors_office"
    ADMINISTRATOR = "administrator"
    SYSTEM = "system"  # automated actors: AMI listener, workers, SMS gateway


class NotificationChannel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"
    CONSOLE = "console"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    # Taken back before it left: it announced a call's placeholder ticket, and the agent's
    # own ticket (with its own acknowledgement) absorbed that placeholder first.
    WITHDRAWN = "withdrawn"


class TimelineAction(enum.StrEnum):
    OPENED = "opened"
    CONTACT_ADDED = "contact_added"
    ROUTED = "routed"
    REFERRED = "referred"
    FORWARDED = "forwarded"
    ASSIGNED = "assigned"
    STATUS_CHANGED = "status_changed"
    NOTE = "note"
    ATTACHMENT_ADDED = "attachment_added"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    MERGED = "merged"
    GROUPED = "grouped"
    NOTIFICATION_QUEUED = "notification_queued"
    POSSIBLE_CITIZEN_MATCH = "possible_citizen_match"
    SLA_PAUSED = "sla_paused"  # clock stopped: waiting on the citizen or an institution
    SLA_RESUMED = "sla_resumed"  # clock running again; due_at moved by the paused time
    ESCALATED = "escalated"  # one escalation step (reminder, superior unit, ...), once
    SPLIT = "split"  # part of a ticket became a ticket of its own (services.ticket_split)
    DEADLINE_EXTENDED = "deadline_extended"  # more time, with the reason (deadline_extension)


class AttachmentKind(enum.StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    AUDIO = "audio"
    OTHER = "other"


class CallOutcome(enum.StrEnum):
    """How an inbound conversation ended (R4.4, R4.6)."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    ABANDONED = "abandoned"  # caller hung up while queued
    OVERFLOW = "overflow"  # left the queue without an agent (timeout, empty queue)
    TRANSFERRED = "transferred"  # answered, then transferred on (department, switchboard)
    OUT_OF_HOURS = "out_of_hours"
    CALLBACK_REQUESTED = "callback_requested"
    VOICEMAIL = "voicemail"


class CallbackReason(enum.StrEnum):
    ABANDONED = "abandoned"
    OUT_OF_HOURS = "out_of_hours"
    IVR_REQUEST = "ivr_request"  # caller pressed the callback key while waiting
    PROMISED = "promised"  # an agent promised to call back


class CallbackStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CampaignKind(enum.StrEnum):
    """What an outbound campaign is for (R5.1–R5.5)."""

    SURVEY = "survey"  # satisfaction survey after resolution (IVR, R5.2)
    CALLBACK = "callback"  # abandoned calls, out-of-hours requests (R5.3)
    RESOLUTION_INFO = "resolution_info"  # the result of a ticket (R5.1)
    DELAY_NOTICE = "delay_notice"
    EVENT_INVITATION = "event_invitation"  # events, neighbourhood meetings (R5.5)
    SPECIAL_GROUP = "special_group"  # elderly, disabled, living alone, ... (R5.5)
    DATA_COMPLETION = "data_completion"  # data collection and completion (R5.5, R6.1)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # stopped by the supervisor: remaining targets cancelled
    FINISHED = "finished"  # every target done, exhausted or skipped


class CampaignTargetSource(enum.StrEnum):
    RESOLVED_TICKETS = "resolved_tickets"
    CITIZEN_GROUP = "citizen_group"
    CSV = "csv"
    CALLBACK_TASKS = "callback_tasks"


class CampaignTargetStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    DIALING = "dialing"  # an attempt is in flight
    DONE = "done"  # answered (and, for surveys, the survey ran)
    EXHAUSTED = "exhausted"  # max attempts reached without an answer
    SKIPPED = "skipped"  # do-not-call, no consent, no usable number
    CANCELLED = "cancelled"  # the campaign was stopped first


class AttemptStatus(enum.StrEnum):
    """One dial of one target. CLAIMED and ORIGINATED are in flight; the rest are outcomes."""

    CLAIMED = "claimed"  # row written and leased; Originate not yet confirmed sent
    ORIGINATED = "originated"  # Asterisk accepted the Originate action
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # congestion, bad number, Asterisk refused, or never sent
