"""Blender (bpy, Cycles) scenes, their parameter grids, and the runner that renders grids into dataset files."""
