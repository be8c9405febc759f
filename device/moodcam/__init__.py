"""moodcam: the on-device half — camera to mood, on a Raspberry Pi or any Linux box.

Nothing in this package imports TensorFlow: it runs on tflite-runtime or ai-edge-litert.
"""

__version__ = "0.1.0"
