"""Long-form projects: blocks of text rendered into one take, exported with chapters and subtitles."""
