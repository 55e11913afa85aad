"""The web app's side: serving grooves over Gradio (temp files, limits, handlers) and the UI's pieces."""
