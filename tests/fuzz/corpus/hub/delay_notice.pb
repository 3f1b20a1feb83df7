kommissarin.huberœ (2CONFIDENTIEL UE/EU CONFIDENTIAL8B,Investigation of a migrant-smuggling networkJDirective (EU) 2023/977RXbde-ATjAT-BK 2024/0815p€¤§Úx€æþ‰‚<
AT-SPOC/2024/17€Æ
#A judicial authorisation is needed. 