"""Defaults for every call, in one place. Override per client or per call with ``with_options``."""

DEFAULT_PORT = 50051  # affect serve's; a target without a port gets it (_target.with_default_port), not gRPC's 443
DEFAULT_TARGET = f"127.0.0.1:{DEFAULT_PORT}"
# Each timeout is a deadline for the whole, its retries included (_core.Retries, within):
DEFAULT_TIMEOUT_S = 30.0  # a unary call (Analyze, ListModels)
DEFAULT_OPEN_TIMEOUT_S = 30.0  # a conversation's opening
DEFAULT_TURN_TIMEOUT_S = 60.0  # one turn's answer, its busy resends included
# On UNAVAILABLE only, before a call or a conversation has started: jittered waits of the backoff
# below until this many are spent and as long as they take at their longest has passed, whichever
# is last (_core.retry_window_s: 19.75 s at 8), so that a call made while a server restarts (8-10 s
# here, its models loaded) reaches it, the channel reconnecting at most MAX_BACKOFF_S apart.
DEFAULT_MAX_RETRIES = 8
# RESOURCE_EXHAUSTED with the server's retry hint (a busy server): resent after the hinted
# delay at most this many times per call or turn, as SDKs retry a 429 after its Retry-After and
# gRPC's retry policy honours grpc-retry-pushback-ms: a busy server says when to come back, and a
# backend should not have to opt in to hearing it (0: the refusal is raised at once). A chatbot
# backend's 100 conversations at once (3 text turns each) against affect serve's defaults were all
# answered with 3.
DEFAULT_BUSY_RETRIES = 3
MAX_BUSY_WAIT_S = 30.0  # a hint longer than this is not waited for: the error is raised
# A conversation whose stream ends with UNAVAILABLE (a server draining or gone) is opened again
# and the text of its last turns replayed: as many as the shipped text model reads as context
# (affect's TextEncoder.window, 8 past turns). At most MAX_RESUMES times per conversation. One the
# server closed for idleness (a caller on hold past its idle_timeout_s) is resumed so too, as often
# as it comes (once a send), without using these up.
DEFAULT_RESUME_TURNS = 8
MAX_RESUMES = 3  # after UNAVAILABLE, in a conversation's whole life, not per turn
# A resume's opening retries UNAVAILABLE (the server still starting) and ALREADY_EXISTS (a server
# from before OpenConversation.resume still holding the conversation on a broken connection; a
# newer one takes it over at once) until max_retries are spent and this long has passed,
# whichever is last (a new call's window, 19.75 s at the default, is shorter).
RESUME_REOPEN_S = 30.0
# A replayed turn (or the turn resent after it) refused as busy is sent again after the server's
# hint this many times, whatever busy_retries says: the replay, not the caller, made it busy.
RESUME_BUSY_RETRIES = 5
# Keepalive (ClientOptions.keepalive_s, _core.keepalive_args): a connection silent this long while a
# call is open is pinged, and closed when the ping is not answered within as long, at most
# KEEPALIVE_TIMEOUT_S: a path that died silently (a NAT or load balancer dropped the connection
# without a reset) ends its streams UNAVAILABLE within about 25 s, and they are resumed, before a
# turn's 60 s run out. Longer than the affect server's own 10 s, so a client talking to it directly
# sends no ping while the path works (what it reads puts its ping off). Off (0) by default: a
# gRPC proxy with gRPC's default ping policy (Ray Serve's) ends a connection pinged more often
# than every 5 minutes while its conversations are quiet, and each such end costs every
# conversation on it one of its MAX_RESUMES; 15 is the value for clients of affect serve itself.
DEFAULT_KEEPALIVE_S = 0.0
RECOMMENDED_KEEPALIVE_S = 15.0
KEEPALIVE_TIMEOUT_S = 10.0
INITIAL_BACKOFF_S = 0.25
MAX_BACKOFF_S = 4.0
MAX_MESSAGE_BYTES = 16 * 2**20
