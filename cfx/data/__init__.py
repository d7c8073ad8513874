"""Built-in data that works offline: semi-synthetic brain MRI and German Credit."""
