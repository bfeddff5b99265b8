"""The web application in a real browser and through its pages."""
