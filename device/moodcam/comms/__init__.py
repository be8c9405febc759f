"""How moodcam talks to other machines: one module per transport (MQTT)."""
