"""Keras model -> full-integer int8 TFLite, checked against float, with its model card."""
