"""What every part of the pack shares: the error base class, the one safe weights reader, image files,
number formatting. Pure: imports neither ComfyUI nor the other packages of the pack."""
