"""Every Asterisk channel-variable name the project uses, in one place (Wazo's rule).

The dialplan templates (``dialplan/*.conf``) are rendered with these names, the FastAGI
routes set them, and the AMI listener reads them from ``ChanVariable`` headers (listed in
``manager.conf``'s ``channelvars``). Never spell one of these names anywhere else.
"""

from __future__ import annotations

# Set on the citizen's inbound leg and inherited by every leg (``__`` prefix in dialplan):
CALL_ID = "CALL_ID"  # Uniqueid of the inbound leg: the key of models.CallRecord
VIA_SWITCHBOARD = "AK_VIA_SWITCHBOARD"  # "1" when the call came through the switchboard
CALLER_LANGUAGE = "AK_LANG"  # "tr" / "en" chosen in the IVR
DIALLED_NUMBER = "AK_DIALLED"  # the number the caller dialled (444 80 07, switchboard...)
RECORDING_PATH = "AK_RECORDING"  # MixMonitor file, relative to the monitor spool
SWITCHBOARD_NOTE = "AK_OPERATOR_NOTE"  # note typed by the switchboard operator
MESSAGE_PATH = "AK_MESSAGE"  # voice message left by the caller, relative to the spool dir
OUTBOUND_TASK_ID = "AK_TASK_ID"  # callback/survey task id, set by the dialer's Originate
TICKET_ID = "AK_TICKET_ID"  # ticket a survey call is about, set by the dialer's Originate
CITIZEN_ID_OUT = "AK_OUT_CITIZEN_ID"  # citizen an outbound call is for, set by the dialer
NOBODY_REASON = "AK_NOBODY_REASON"  # why nobody answered: out_of_hours / ivr_request
ATTEMPT_ID = "AK_ATTEMPT_ID"  # campaign call attempt (its ChannelId), set by the dialer
OUTBOUND_KIND = "AK_OUT_KIND"  # campaign kind of an outbound call: picks the message prompt

# Set by the FastAGI caller_lookup route:
CITIZEN_ID = "AK_CITIZEN_ID"  # empty when unknown
CITIZEN_NAME = "AK_CITIZEN_NAME"  # display name, also written to CALLERID(name)
OPEN_TICKETS = "AK_OPEN_TICKETS"  # number of open tickets of the caller
PRIORITY = "AK_PRIORITY"  # queue priority (flagged groups: elderly, disabled...)
CALLER_E164 = "AK_CALLER_E164"  # normalised caller number, empty when withheld/invalid

# Set by the callback_request / survey routes:
CALLBACK_ID = "AK_CALLBACK_ID"
SURVEY_RESULT = "AK_SURVEY_RESULT"  # "complete" / "partial" / "failed"

# Set by Asterisk itself and read by us:
AGI_STATUS = "AGISTATUS"  # SUCCESS / FAILURE / NOTFOUND / HANGUP
QUEUE_STATUS = "QUEUESTATUS"  # TIMEOUT / FULL / JOINEMPTY / LEAVEEMPTY / ...
BLIND_TRANSFER = "BLINDTRANSFER"

# Channel variables the AMI listener needs in every event snapshot (manager.conf).
AMI_CHANNELVARS = (
    CALL_ID,
    VIA_SWITCHBOARD,
    CALLER_LANGUAGE,
    DIALLED_NUMBER,
    RECORDING_PATH,
    CITIZEN_ID,
    CALLER_E164,
    MESSAGE_PATH,
    OUTBOUND_TASK_ID,
    QUEUE_STATUS,
    NOBODY_REASON,
    CALLBACK_ID,
    ATTEMPT_ID,
    SURVEY_RESULT,
)

ALL = tuple(
    value for name, value in sorted(globals().items()) if name.isupper() and isinstance(value, str)
)
