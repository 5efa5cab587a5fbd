// A tiny animated scene for the `pimpi render cmd` tests: a ball moving over a checker floor.
// Render frames 1..12 with: povray +Ianim.pov +Oframe.png +W32 +H24 +KFI1 +KFF12 -D
#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 1, -4> look_at <0, 0.5, 0> }
light_source { <4, 6, -5> color rgb 1 }
plane { y, 0 pigment { checker rgb 0.2 rgb 0.9 } }
sphere {
  <0, 0.5, 0>, 0.5
  pigment { rgb <1, 0.3, 0.2> }
  translate <1.5 * sin(clock * 2 * pi), 0, 0>
}
