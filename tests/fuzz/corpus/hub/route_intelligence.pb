kommissarin.huberœ (2CONFIDENTIEL UE/EU CONFIDENTIAL8B,Investigation of a migrant-smuggling networkJDirective (EU) 2023/977RXbde-ATjAT-BK 2024/0815p€¤§Úx€æş‰Zş
Route through the Alps3Migrants picked up at night near the motorway exit.0902"¨
@
p1MÃœLLER"
JÃ¶rg Karl2
Der Fahrer:1979-02RDERTRXbl1x
2
p2r(Minor, about 15 years old, speaks Pashtox1
d1	L01X00T47"DE2
2015-01-10:
2025-01-09Bp10
v1	M-AB 1234DE"Ford:WF0XXXTTGXKA12345Bo1"/
o1Schnell Transporte GmbH"DE*
HRB 123456*
l1MÃ¼nchenDE"
„ô-øŒ…*"
l2*Autoroute A1, sortie 12
Lyon2
e1àÅ³"l22p12v1: 
r1
l2l1À‚¿³ ‰Â³(:v1B
c1+4915112345678*p1