"""Desktop stage: read FER2013, train the CNN, evaluate it. Imports TensorFlow; never shipped to the Pi."""
