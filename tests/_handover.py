"""A support call in which a new caller is put through under the same speaker name: the turns
before the handover and after it, shared by the library's and the wire's reset_speaker tests."""

BEFORE_HANDOVER = [("customer", "This is ridiculous, I'm paying for this and nothing works!"),
                   ("customer", "I'm furious. Cancel my account now!"),
                   ("agent", "I understand. I'm putting you through to a colleague who can help.")]
AFTER_HANDOVER = [("customer", "Hello? I've been on hold for an hour, this is outrageous!"),
                  ("agent", "I'm sorry for the wait, let me look at your account."),
                  ("customer", "Fine. Just fix it please.")]
